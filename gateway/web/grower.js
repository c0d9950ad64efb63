// The grower's page (shown to participants with the grower role): consign a lot with its master
// data (the grade from the product's scale), offer part of a lot before the auction at a fixed
// price (a presale) or withdraw the offer, follow one's lots through the day live (on the clock,
// sold, unsold, withdrawn), see each sale as it happens and the day's takings; its statement of a
// day with the corrections of complaints against it, the complaints' outcomes and its quality
// index (`get_quality`, protocol section 12: it moves at the end of each day).

import { market } from './state.js';
import { cny, parseMoneyInput } from './money.js';
import { h, $, fill, setText, clockTime, toast, attempt, inputError, formValues, wholeNumber, throttle } from './ui.js';
import { LOT_STATUSES, PACKAGING, MATURITY, productName, countOf } from './words.js';
import { products, gradesOf, loadProducts, onProducts } from './products.js';
import { masterParts, provenanceParts, lotSize, canOfferPresale, concernsGrower } from './lots.js';
import { initStatement } from './statement.js';
import { complaintUnit } from './dispatch.js';

let session;
let sales = [];
let lots = [];
let resolved = []; // complaint_resolved about this grower's lots, newest first
const ownIds = new Set(); // this grower's lot ids: which feed events are about its lots
let ownClocks = new Set(); // the clocks where its lots wait or are auctioned
const drafts = new Map(); // lot_id → {price, containers} of a presale typed but not sent

export function initGrower(theSession) {
  session = theSession;
  fillProducts();
  fill($('#consign-form select[name=maturity]'), h('option', { value: '' }, '—'),
    ...Object.entries(MATURITY).map(([stage, m]) => h('option', { value: stage }, `${stage} ${m.en} ${m.zh}`)));
  fill($('#consign-form select[name=packaging]'), h('option', { value: '' }, '—'),
    ...Object.entries(PACKAGING).map(([code, p]) => h('option', { value: code }, `${p.en} ${p.zh}`)));
  onProducts(fillProducts);
  $('#consign-form select[name=product]').addEventListener('change', fillGrades);
  $('#consign-form').addEventListener('submit', onConsign);
  $('#grower-refresh').addEventListener('click', () => refresh());
  session.on('login', (info) => {
    sales = [];
    lots = [];
    ownIds.clear();
    ownClocks = new Set();
    resolved = [];
    renderSales();
    renderLots();
    renderComplaints();
    renderQuality(null);
    if (info.roles?.includes('grower')) {
      loadProducts();
      refresh();
      refreshQuality();
      const dayInput = $('#grower-statement-form input[name=day]');
      if (!dayInput.value) dayInput.value = market.day ?? info.day ?? '';
    }
  });
  session.on('complaint_resolved', (c) => {
    if (!session.hasRole('grower')) return;
    resolved.unshift(c);
    renderComplaints();
    if (c.decision === 'accepted') toast(`Complaint ${c.complaint_id} on ${c.ref} accepted: you credit the buyer ${cny(c.credit)} — 投诉成立`, 'warn');
  });
  // The quality index moves at the end of each day.
  market.on('day', () => refreshQuality());
  initStatement(session, 'grower', () => market.day ?? session.info?.day);
  session.on('lot_sale', (s) => {
    sales.unshift(s);
    renderSales();
    const how = s.kind === 'presale' ? 'Presale' : 'Sold';
    toast(`${how}: lot ${s.lot_id}, ${countOf(s.containers, 'container')} at ¥${s.price} — 售出`, 'good');
    scheduleRefresh();
  });
  for (const type of ['lot_withdrawn', 'award_voided', 'presale_offered', 'presale_withdrawn']) session.on(type, () => scheduleRefresh());
  // The public feed tells when one of its lots goes on a clock, sells, goes unsold, moves in a
  // supply line or has its presale taken: ask for the lots again then (and only then).
  market.on('event', (e) => {
    if (session.hasRole('grower') && concernsGrower(e, ownIds, session.info?.participant, ownClocks)) scheduleRefresh();
  });
  renderSales();
  renderLots();
  renderComplaints();
}

/** The grower's quality index as the market computes it (`get_quality`). */
async function refreshQuality() {
  if (!session.hasRole('grower')) return;
  let q;
  try {
    q = await session.request({ type: 'get_quality', grower: session.info.participant });
  } catch {
    return; // the banner says why
  }
  renderQuality(q);
}

function renderQuality(q) {
  const box = $('[data-testid=quality]');
  const fields = ['days', 'lots', 'containers_sold', 'complaints', 'accepted'];
  box.dataset.qi = q?.qi ?? '';
  for (const f of fields) box.dataset[f.replace(/_(\w)/g, (_, c) => c.toUpperCase())] = q ? String(q[f]) : '';
  setText($('[data-testid=quality-qi]'), !q ? '—' : q.qi ?? 'not rated yet 暂无');
  for (const f of fields) setText($(`[data-testid=quality-${f.replace(/_/g, '-')}]`), q ? String(q[f]) : '—');
}

function renderComplaints() {
  const list = $('[data-testid=grower-complaints]');
  list.dataset.count = String(resolved.length);
  if (resolved.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No complaint decided on your lots this session · 暂无投诉处理'));
    return;
  }
  fill(list, ...resolved.map((c) => h('li', { testid: `grower-complaint-${c.complaint_id}`, dataset: { decision: c.decision, credit: c.credit } },
    h('span', { class: 'mono' }, `#${c.complaint_id}`),
    h('span', {}, `${c.ref ?? ''}${c.containers ? ` · ${countOf(c.containers, complaintUnit(c.ref))}` : ''}`),
    h('span', { class: `complaint-outcome outcome-${c.decision}` }, c.decision === 'accepted' ? `accepted · you credit ${cny(c.credit)}` : 'rejected 已驳回'))));
}

/** At most one refresh per 800 ms, however busy the clocks are. */
const scheduleRefresh = throttle(() => refresh(), 800);

function fillProducts() {
  const select = $('#consign-form select[name=product]');
  const was = select.value;
  fill(select, ...products().map((p) => h('option', { value: p.code }, `${productName(p.code) === p.code ? p.name : productName(p.code)} (${p.code})`)));
  if (products().some((p) => p.code === was)) select.value = was;
  fillGrades();
}

/** The grade choices are the chosen product's scale, best first. */
function fillGrades() {
  const product = $('#consign-form select[name=product]').value;
  const select = $('#consign-form select[name=grade]');
  const was = select.value;
  const grades = gradesOf(product);
  fill(select, ...grades.map((g) => h('option', { value: g }, g)));
  if (grades.includes(was)) select.value = was;
}

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
  if (v.stem_length_cm) {
    const cm = wholeNumber(v.stem_length_cm);
    if (!cm || cm > 300) return inputError('Stem length is a whole number of centimetres, 1 to 300');
    msg.stem_length_cm = cm;
  }
  if (v.maturity) msg.maturity = Number(v.maturity);
  if (v.harvest_day) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v.harvest_day)) return inputError('Harvest day as YYYY-MM-DD');
    msg.harvest_day = v.harvest_day;
  }
  for (const key of ['origin', 'photo_url', 'note', 'variety', 'packaging', 'base', 'batch']) if (v[key]) msg[key] = v[key];
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  const lot = reply.lot;
  market.rememberLot(lot);
  ownIds.add(lot.lot_id);
  toast(`Lot ${lot.lot_id} consigned — 寄售成功`, 'good');
  const master = masterParts(lot).join(' · ');
  setText($('[data-testid=consign-result]'), `Lot #${lot.lot_id} consigned: ${lotSize(lot)} ${productName(lot.product)} ${lot.grade}${master ? ` · ${master}` : ''}`);
  $('[data-testid=consign-result]').dataset.lot = String(lot.lot_id);
  refresh();
}

async function refresh() {
  if (!session.hasRole('grower')) return;
  let reply;
  let account;
  try {
    [reply, account] = await Promise.all([session.request({ type: 'get_lots' }), session.request({ type: 'get_account' })]);
  } catch {
    return;
  }
  lots = reply.lots ?? [];
  for (const lot of lots) {
    market.rememberLot(lot);
    ownIds.add(lot.lot_id);
  }
  ownClocks = new Set(lots.filter((l) => l.clock && ['queued', 'on_clock'].includes(l.status)).map((l) => l.clock));
  renderLots();
  setText($('[data-testid=grower-sold]'), cny(account.sold));
  setText($('[data-testid=grower-commission]'), cny(account.commission ?? '0.00'));
}

function renderLots() {
  const body = $('[data-testid=grower-lots] tbody');
  if (lots.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 11 }, 'No lots consigned today · 今日暂无寄售')));
    return;
  }
  // Keep what the grower is typing when the list refreshes under it.
  const focused = document.activeElement?.dataset?.testid ?? null;
  fill(body, ...lots.slice().reverse().map(lotRow));
  if (focused) body.querySelector(`[data-testid="${CSS.escape(focused)}"]`)?.focus();
}

function lotRow(lot) {
  const id = lot.lot_id;
  const presale = lot.presale;
  const master = [...masterParts(lot), ...provenanceParts(lot)].join(' · ');
  return h('tr', {
    testid: `grower-lot-${id}`,
    dataset: { status: lot.status, sold: String(lot.sold ?? 0), unsold: String(lot.unsold ?? 0), remaining: String(lot.remaining), presale: presale?.price ?? '', presaleContainers: String(presale?.containers ?? '') },
  },
    h('td', { class: 'num' }, `#${id}`),
    h('th', { scope: 'row' }, productName(lot.product), ' ', h('span', { class: `grade grade-${lot.grade}` }, lot.grade)),
    h('td', { class: 'master', testid: `grower-lot-${id}-master`, title: master || null }, master || '—'),
    h('td', { class: 'num' }, lotSize(lot), lot.min_price ? h('small', {}, ` ≥ ¥${lot.min_price}`) : null),
    h('td', { testid: `grower-lot-${id}-clock` }, lot.clock ? `Clock ${lot.clock} #${lot.position}${lot.start_price ? ` from ¥${lot.start_price}` : ''}` : '—'),
    h('td', { class: 'num', testid: `grower-lot-${id}-sold` }, String(lot.sold ?? 0)),
    h('td', { class: 'num', testid: `grower-lot-${id}-unsold` }, String(lot.unsold ?? 0)),
    h('td', { class: 'num', testid: `grower-lot-${id}-remaining` }, String(lot.remaining)),
    h('td', { testid: `grower-lot-${id}-presale` }, presale ? `${countOf(presale.containers, 'container')} at ¥${presale.price}` : '—'),
    h('td', {}, h('span', { class: `status status-${lot.status}`, testid: `grower-lot-${id}-status` }, LOT_STATUSES[lot.status] ?? lot.status)),
    h('td', { class: 'presale-cell' }, ...presaleControls(lot)));
}

/** Offer (or replace) a presale while the lot has not reached its clock; withdraw an open one. */
function presaleControls(lot) {
  const id = lot.lot_id;
  if (!canOfferPresale(lot)) return [h('span', { class: 'muted' }, '—')];
  const draft = drafts.get(id) ?? { price: '', containers: '' };
  const price = h('input', { type: 'text', inputmode: 'decimal', class: 'price-input', placeholder: 'price', value: draft.price, testid: `presale-price-${id}`, 'aria-label': `Presale price per unit for lot ${id}` });
  const containers = h('input', { type: 'number', min: '1', max: String(lot.remaining), class: 'count-input', placeholder: 'boxes', value: draft.containers, testid: `presale-containers-${id}`, 'aria-label': `Containers to presell of lot ${id}` });
  const remember = () => drafts.set(id, { price: price.value, containers: containers.value });
  price.addEventListener('input', remember);
  containers.addEventListener('input', remember);
  const offer = h('button', { type: 'button', class: 'small', testid: `offer-presale-${id}` }, lot.presale ? 'Replace 更新预售' : 'Offer 预售');
  offer.addEventListener('click', async () => {
    const p = parseMoneyInput(price.value);
    const n = wholeNumber(containers.value);
    if (!p) return inputError(`Presale price for lot ${id} must be a positive amount, e.g. 3.20`);
    if (!n) return inputError('Containers must be a whole number of at least 1');
    const reply = await attempt(session.request({ type: 'offer_presale', lot_id: id, price: p, containers: n }));
    if (!reply) return;
    drafts.delete(id);
    toast(`Presale on lot ${reply.lot_id}: ${countOf(reply.containers, 'container')} at ¥${reply.price} — 预售已挂出`, 'good');
    refresh();
  });
  const out = [price, containers, offer];
  if (lot.presale) {
    const withdraw = h('button', { type: 'button', class: 'small ghost danger', testid: `withdraw-presale-${id}` }, 'Withdraw 撤回');
    withdraw.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'withdraw_presale', lot_id: id }));
      if (!reply) return;
      toast(`Presale on lot ${reply.lot_id} withdrawn (${countOf(reply.containers, 'container')} back to the clock)`, 'warn');
      refresh();
    });
    out.push(withdraw);
  }
  return out;
}

function renderSales() {
  const list = $('[data-testid=lot-sales]');
  if (sales.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No sales yet · 暂无售出'));
    return;
  }
  fill(list, ...sales.map((s) => h('li', { dataset: { kind: s.kind ?? 'clock' } },
    h('span', { class: 'when' }, clockTime(s.ts)),
    h('span', {}, `Lot #${s.lot_id} → ${s.buyer}`),
    s.kind === 'presale' ? h('span', { class: 'tag' }, 'presale 预售') : null,
    h('span', { class: 'num' }, `${s.containers} × ¥${s.price}`),
    h('span', { class: 'num' }, cny(s.amount), h('small', {}, ` − commission ${cny(s.commission)}`)))));
}
