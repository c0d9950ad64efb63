// The catalogue page (`#/catalogue`): the day's lots in auction order per clock with their master
// data (`GET /api/catalogue`, public, protocol section 11), filtered by product, grade, clock and
// grower. It is asked for again when the feed says the plan changed (`catalogue`, `supply_line`,
// `presale`); clock events update a row's status and what remains in place, since asking for a
// big hall's whole catalogue on every award would be wasteful. From a row a logged-in buyer places
// a standing bid or, when the grower offers one, buys at the presale price.

import { market } from './state.js';
import { fetchJson } from './net.js';
import { parseMoneyInput } from './money.js';
import { h, $, fill, setText, toast, attempt, inputError, formValues, wholeNumber, throttle } from './ui.js';
import { LOT_STATUSES, productName, maturityName, packagingName, countOf } from './words.js';
import { catalogueRows, filterRows, filterChoices, lotSize, canStandingBid, canBuyPresale, presaleAfter, provenanceParts } from './lots.js';
import { scales, loadProducts } from './products.js';
import { standingBid, onStandingChange } from './buyer.js';
import { lotLink } from './trace.js';

/** Rows drawn at most: a big hall has 10,000 lots a day; the filters narrow them. */
const ROWS_SHOWN_MAX = 400;
const FILTERS = ['product', 'grade', 'clock', 'grower'];

let session;
let visible = false;
let stale = true;
let catalogue = null; // {day, clocks:[{clock, lots}]} as the server said
let rows = []; // catalogueRows(catalogue), with live changes applied
let chosen = null; // lot_id of the row whose order form is open

export function initCatalogue(theSession) {
  session = theSession;
  for (const key of FILTERS) $(`#catalogue-${key}`).addEventListener('change', render);
  $('#catalogue-refresh').addEventListener('click', () => load());
  $('#catalogue-clear').addEventListener('click', () => {
    for (const key of FILTERS) $(`#catalogue-${key}`).value = '';
    render();
  });
  $('#catalogue-standing-form').addEventListener('submit', onStandingSubmit);
  $('#catalogue-presale-form').addEventListener('submit', onPresaleSubmit);
  $('#catalogue-order-close').addEventListener('click', () => choose(null));
  for (const kind of ['catalogue', 'presale', 'next', 'day']) market.on(kind, () => reloadSoon());
  market.on('event', onClockEvent);
  session.on('login', () => render());
  session.on('logout', () => render());
  onStandingChange(() => render());
  render();
}

export function showCatalogue() {
  visible = true;
  if (stale) load();
}

export function hideCatalogue() {
  visible = false;
}

/** The plan changed: ask again now if the page is shown, else when it is next shown. */
const reloadNow = throttle(() => load(), 400);
function reloadSoon() {
  stale = true;
  if (visible) reloadNow();
}

async function load() {
  stale = false;
  await loadProducts();
  const answer = await fetchJson('/api/catalogue');
  $('[data-testid=catalogue]').dataset.available = answer ? 'yes' : 'no';
  if (!answer) return render();
  catalogue = answer;
  rows = catalogueRows(answer);
  for (const lot of rows) market.rememberLot(lot);
  render();
}

/** A clock's events change a lot's status and what remains without a new plan. */
function onClockEvent(e) {
  const lot = rows.find((l) => l.lot_id === (e.lot?.lot_id ?? e.lot_id));
  if (!lot) return;
  if (e.type === 'lot_on_clock') Object.assign(lot, { status: 'on_clock', presale: null, remaining: e.lot.remaining });
  else if (e.type === 'clock_award' || e.type === 'award_voided') Object.assign(lot, { remaining: e.remaining, status: e.remaining === 0 ? 'sold' : 'on_clock' });
  else if (e.type === 'lot_unsold') lot.status = e.remaining < lot.containers ? 'partly_sold' : 'unsold';
  else if (e.type === 'presale') lot.presale = presaleAfter(e);
  else return;
  render();
}

function filters() {
  return Object.fromEntries(FILTERS.map((key) => [key, $(`#catalogue-${key}`).value]));
}

/** Fills a filter's choices, keeping what was chosen (also when it is no longer among them). */
function fillFilter(key, values, label) {
  const select = $(`#catalogue-${key}`);
  const was = select.value;
  const all = was && !values.map(String).includes(was) ? [...values, was] : values;
  fill(select, h('option', { value: '' }, 'all 全部'), ...all.map((v) => h('option', { value: String(v) }, label(v))));
  select.value = was;
}

function render() {
  const table = $('[data-testid=catalogue]');
  const body = table.querySelector('tbody');
  const choices = filterChoices(rows, scales());
  fillFilter('product', choices.products, (p) => productName(p));
  fillFilter('grade', choices.grades, (g) => g);
  fillFilter('clock', choices.clocks, (c) => `Clock ${c}`);
  fillFilter('grower', choices.growers, (g) => g);
  setText($('[data-testid=catalogue-day]'), catalogue?.day ?? '');
  const shown = filterRows(rows, filters());
  table.dataset.count = String(shown.length);
  table.dataset.total = String(rows.length);
  const more = $('[data-testid=catalogue-more]');
  more.hidden = shown.length <= ROWS_SHOWN_MAX;
  setText(more, `Showing the first ${ROWS_SHOWN_MAX} of ${shown.length} lots — narrow the filters · 请缩小筛选范围`);
  if (shown.length === 0) {
    const why = !catalogue ? 'No catalogue yet — the day is not planned · 尚未发布目录' : 'No lot matches the filters · 无匹配拍品';
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 15 }, why)));
  } else {
    fill(body, ...shown.slice(0, ROWS_SHOWN_MAX).map(row));
  }
  renderOrder();
}

function row(lot) {
  const id = lot.lot_id;
  const buyer = session.hasRole('buyer');
  const mine = standingBid(id);
  const bid = h('button', { type: 'button', class: 'small', testid: `catalogue-bid-${id}` }, 'Standing bid 委托');
  bid.disabled = !buyer || !canStandingBid(lot);
  bid.title = buyer ? 'Buy at the clock when the price reaches your maximum' : 'Log in as a buyer';
  bid.addEventListener('click', () => choose(id, 'standing'));
  const presale = lot.presale
    ? h('button', { type: 'button', class: 'small good', testid: `catalogue-presale-${id}` }, `Buy ¥${lot.presale.price} 预售`)
    : null;
  if (presale) {
    presale.disabled = !buyer || !canBuyPresale(lot);
    presale.addEventListener('click', () => choose(id, 'presale'));
  }
  return h('tr', {
    testid: `catalogue-lot-${id}`,
    class: id === chosen ? 'chosen' : '',
    dataset: { clock: String(lot.clock ?? ''), position: String(lot.position ?? ''), status: lot.status, product: lot.product, grade: lot.grade, grower: lot.grower, remaining: String(lot.remaining), presale: lot.presale?.price ?? '', qi: lot.qi ?? '' },
  },
    h('td', { class: 'num' }, lot.clock ? `${lot.clock}` : '—'),
    h('td', { class: 'num' }, lot.position ? `${lot.position}` : '—'),
    h('th', { scope: 'row' }, productName(lot.product), ' ', h('span', { class: `grade grade-${lot.grade}` }, lot.grade), ' ', lotLink(id, `#${id}`, `catalogue-trace-${id}`)),
    h('td', {}, lot.variety || '—'),
    h('td', { class: 'num' }, typeof lot.stem_length_cm === 'number' ? `${lot.stem_length_cm} cm` : '—'),
    h('td', {}, lot.maturity ? maturityName(lot.maturity) : '—'),
    h('td', {}, lot.packaging ? packagingName(lot.packaging) : '—'),
    h('td', {}, lot.grower),
    h('td', { class: 'num', testid: `catalogue-qi-${id}` }, lot.qi ?? '—'),
    h('td', { class: 'provenance', title: provenanceParts(lot).join(' · ') || null }, provenanceParts(lot).join(' · ') || '—'),
    h('td', { class: 'num' }, lotSize(lot)),
    h('td', { class: 'num', testid: `catalogue-remaining-${id}` }, String(lot.remaining)),
    h('td', { class: 'num' }, lot.start_price ? `¥${lot.start_price}` : '—'),
    h('td', {}, h('span', { class: `status status-${lot.status}` }, LOT_STATUSES[lot.status] ?? lot.status)),
    h('td', { class: 'actions' }, bid, presale,
      mine ? h('span', { class: 'tag', testid: `catalogue-mine-${id}` }, `≤ ¥${mine.max_price} × ${mine.containers}`) : null));
}

// ---- the order form of the chosen row ------------------------------------------------------------

function choose(lotId, mode) {
  chosen = lotId;
  render();
  if (lotId === null) return;
  const focus = mode === 'presale' ? '[data-testid=catalogue-presale-containers]' : '[data-testid=catalogue-sb-price]';
  $(focus)?.focus();
}

function renderOrder() {
  const panel = $('[data-testid=catalogue-order]');
  const lot = rows.find((l) => l.lot_id === chosen);
  panel.hidden = !lot;
  if (!lot) return;
  panel.dataset.lot = String(lot.lot_id);
  setText($('[data-testid=catalogue-order-lot]'),
    `Lot #${lot.lot_id} · ${productName(lot.product)} ${lot.grade} · ${lotSize(lot)} · grower ${lot.grower} · ${lot.remaining} left${lot.clock ? ` · clock ${lot.clock}, #${lot.position}` : ''}`);
  const presale = $('#catalogue-presale-form');
  presale.hidden = !lot.presale;
  if (lot.presale) {
    setText($('[data-testid=catalogue-presale-price]'), `¥${lot.presale.price}`);
    setText($('[data-testid=catalogue-presale-left]'), countOf(lot.presale.containers, 'container'));
    $('[data-testid=catalogue-presale-submit]').disabled = !canBuyPresale(lot) || !session.hasRole('buyer');
  }
  $('[data-testid=catalogue-sb-submit]').disabled = !canStandingBid(lot) || !session.hasRole('buyer');
}

async function onStandingSubmit(event) {
  event.preventDefault();
  if (chosen === null) return;
  const v = formValues(event.target);
  const maxPrice = parseMoneyInput(v.max_price);
  const containers = wholeNumber(v.containers);
  if (!maxPrice) return inputError('Max price must be a positive amount with at most 2 decimals, e.g. 2.50');
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  const lotId = chosen;
  const reply = await attempt(session.request({ type: 'standing_bid', lot_id: lotId, max_price: maxPrice, containers }));
  if (!reply) return;
  setText($('[data-testid=catalogue-order-result]'), `Standing bid on lot ${reply.lot_id}: up to ¥${reply.max_price} for ${countOf(reply.containers, 'container')} — 委托已提交`);
  toast(`Standing bid on lot ${reply.lot_id} placed`, 'good');
}

async function onPresaleSubmit(event) {
  event.preventDefault();
  if (chosen === null) return;
  const containers = wholeNumber(formValues(event.target).containers);
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  const reply = await attempt(session.request({ type: 'buy_presale', lot_id: chosen, containers }));
  if (!reply) return;
  setText($('[data-testid=catalogue-order-result]'),
    `Bought ${countOf(reply.containers, 'container')} of lot ${reply.lot_id} at ¥${reply.price}: ${reply.units} units, ¥${reply.amount} + fee ¥${reply.fee} — 预售成交`);
  toast(`Presale bought: lot ${reply.lot_id}, ${reply.containers} × ¥${reply.price}`, 'good');
  reloadSoon();
}
