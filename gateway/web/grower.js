// The grower's page (shown to participants with the grower role): consign a lot, follow one's
// lots through the day, see each sale as it happens and the day's takings.

import { market } from './state.js';
import { cny, parseMoneyInput } from './money.js';
import { h, $, fill, setText, clockTime, toast, attempt, inputError, formValues, wholeNumber, throttle } from './ui.js';
import { PRODUCTS, LOT_STATUSES, productName, productUnit, unitWords, countOf } from './words.js';

let session;
let sales = [];

export function initGrower(theSession) {
  session = theSession;
  const product = $('#consign-form select[name=product]');
  fill(product, ...Object.entries(PRODUCTS).map(([code, p]) => h('option', { value: code }, `${p.en} ${p.zh} (${code})`)));
  $('#consign-form').addEventListener('submit', onConsign);
  $('#grower-refresh').addEventListener('click', () => refresh());
  session.on('login', (info) => {
    sales = [];
    renderSales();
    if (info.roles?.includes('grower')) refresh();
  });
  session.on('lot_sale', (s) => {
    sales.unshift(s);
    renderSales();
    toast(`Sold: lot ${s.lot_id}, ${countOf(s.containers, 'container')} at ¥${s.price} — 售出`, 'good');
    scheduleRefresh();
  });
  for (const type of ['lot_withdrawn', 'award_voided']) session.on(type, () => scheduleRefresh());
  market.on('clock', () => {
    if (session.hasRole('grower')) scheduleRefresh();
  });
  renderSales();
}

/** At most one refresh per 800 ms, however busy the clocks are. */
const scheduleRefresh = throttle(() => refresh(), 800);

async function onConsign(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const units = wholeNumber(v.units_per_container);
  const containers = wholeNumber(v.containers);
  const minPrice = parseMoneyInput(v.min_price);
  if (!units) return inputError('Units per container must be a whole number of at least 1');
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  if (!minPrice) return inputError('Reserve price must be a positive amount with at most 2 decimals, e.g. 1.20');
  const msg = { type: 'consign_lot', product: v.product, grade: v.grade, units_per_container: units, containers, min_price: minPrice };
  if (v.min_purchase) {
    const min = wholeNumber(v.min_purchase);
    if (!min) return inputError('Minimum purchase must be a whole number of containers');
    msg.min_purchase = min;
  }
  for (const key of ['origin', 'photo_url', 'note']) if (v[key]) msg[key] = v[key];
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  market.rememberLot(reply.lot);
  toast(`Lot ${reply.lot.lot_id} consigned — 寄售成功`, 'good');
  setText($('[data-testid=consign-result]'), `Lot #${reply.lot.lot_id} consigned: ${reply.lot.containers} × ${reply.lot.units_per_container} ${productName(reply.lot.product)} ${reply.lot.grade}`);
  refresh();
}

async function refresh() {
  if (!session.hasRole('grower')) return;
  let lots;
  let account;
  try {
    [lots, account] = await Promise.all([session.request({ type: 'get_lots' }), session.request({ type: 'get_account' })]);
  } catch {
    return;
  }
  for (const lot of lots.lots ?? []) market.rememberLot(lot);
  renderLots(lots.lots ?? []);
  setText($('[data-testid=grower-sold]'), cny(account.sold));
  setText($('[data-testid=grower-commission]'), cny(account.commission ?? '0.00'));
}

function renderLots(lots) {
  const body = $('[data-testid=grower-lots] tbody');
  if (lots.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 8 }, 'No lots consigned today · 今日暂无寄售')));
    return;
  }
  fill(body, ...lots.slice().reverse().map((lot) => {
    const unit = productUnit(lot.product);
    return h('tr', { testid: `grower-lot-${lot.lot_id}`, dataset: { status: lot.status } },
      h('td', { class: 'num' }, `#${lot.lot_id}`),
      h('th', { scope: 'row' }, productName(lot.product)),
      h('td', {}, lot.grade),
      h('td', { class: 'num' }, `${lot.containers} × ${lot.units_per_container} ${unitWords(unit, lot.units_per_container)}`),
      h('td', { class: 'num' }, String(lot.remaining)),
      h('td', { class: 'num' }, lot.min_price ? `¥${lot.min_price}` : '—'),
      h('td', {}, lot.origin || '—'),
      h('td', {}, h('span', { class: `status status-${lot.status}` }, LOT_STATUSES[lot.status] ?? lot.status)));
  }));
}

function renderSales() {
  const list = $('[data-testid=lot-sales]');
  if (sales.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No sales yet · 暂无售出'));
    return;
  }
  fill(list, ...sales.map((s) => h('li', {},
    h('span', { class: 'when' }, clockTime(s.ts)),
    h('span', {}, `Lot #${s.lot_id} → ${s.buyer}`),
    h('span', { class: 'num' }, `${s.containers} × ¥${s.price}`),
    h('span', { class: 'num' }, cny(s.amount), h('small', {}, ` − commission ${cny(s.commission)}`)))));
}
