// The buyer's clock view: every clock side by side with its lot card (with the lot's master
// data), the falling price drawn from `clock_started` (the server broadcasts rounds, not ticks), a
// quantity, a Buy button, hotkeys and the next six lots of its supply line; the buyer's credit, its
// purchases of the day (clock awards and presales) and its standing bids (asked for at login, so
// they come back after a reload).

import { market, clockPriceFen } from './state.js';
import { serverClock } from './net.js';
import { ClockFace } from './clockface.js';
import { toFen, fenToDecimal, cny, parseMoneyInput } from './money.js';
import { h, svg, $, fill, setText, clockTime, toast, attempt, inputError, formValues, wholeNumber, showError } from './ui.js';
import { PRODUCTS, CLOCK_STATES, productName, productUnit, unitWords, errorWords, countOf, UNITS } from './words.js';
import { masterParts, provenanceParts, nextLotLine, lotSize } from './lots.js';
import { lotLink } from './trace.js';

const SOLD_PULSE_MS = 1600;
const NOTICE_MS = 3000;

let session;
const cards = new Map(); // clock number → {root, face, parts…}
let selected = 1;
let awards = []; // this buyer's awards and presale purchases today, newest first
let standing = new Map(); // lot_id → {lot_id, max_price, containers}
let account = null;
let accountTimer = null;
let feedOnline = false;

/**
 * Without the feed the clocks may have moved on unseen: grey them out and stop bidding until the
 * new snapshot arrives.
 */
export function setFeedOnline(online) {
  feedOnline = online;
  document.body.classList.toggle('feed-down', !online);
  for (const n of cards.keys()) updateCard(n);
}

export function initBuyer(theSession) {
  session = theSession;
  market.on('snapshot', renderClocks);
  market.on('clock', (n) => updateCard(n));
  market.on('next', (n) => renderNext(n));
  market.on('day', () => {
    awards = [];
    standing.clear();
    renderAwards();
    renderStanding();
    refreshAccount();
  });

  session.on('login', onLogin);
  session.on('logout', onLogout);
  session.on('award', onAward);
  session.on('award_voided', onAwardVoided);
  session.on('presale_bought', onPresaleBought);
  session.on('standing_bid_accepted', (m) => {
    standing.set(m.lot_id, m);
    renderStanding();
  });
  session.on('standing_bid_cancelled', (m) => {
    standing.delete(m.lot_id);
    renderStanding();
  });
  session.on('error', (e) => {
    // A standing bid that failed when it triggered is dropped by the engine (protocol 6).
    if (e.lot_id !== undefined && e.req_id === undefined && standing.delete(e.lot_id)) renderStanding();
  });
  for (const type of ['fill', 'order_done', 'cancelled', 'credit_limit_set', 'day_settled']) session.on(type, () => refreshAccount());
  session.on('lot_consigned', (m) => market.rememberLot(m.lot));

  document.addEventListener('keydown', onKey);
  $('#standing-form').addEventListener('submit', onStandingSubmit);
  $('#standing-refresh').addEventListener('click', () => refreshLots());
  $('#credit-refresh').addEventListener('click', () => refreshAccount());
  market.on('clock', () => scheduleLotRefresh());
  requestAnimationFrame(frame);
  renderAwards();
  renderStanding();
  renderCredit();
}

// ---- clocks ---------------------------------------------------------------------------------

function renderClocks() {
  const grid = $('#clocks');
  const numbers = [...market.clocks.keys()].sort((a, b) => a - b);
  const same = numbers.length === cards.size && numbers.every((n) => cards.has(n));
  if (!same) {
    cards.clear();
    fill(grid, ...numbers.map((n) => buildCard(n)));
    grid.dataset.clocks = String(numbers.length);
    if (!cards.has(selected)) selected = numbers[0] ?? 1;
    markSelected();
  }
  for (const n of numbers) updateCard(n);
}

function buildCard(n) {
  const id = `clock-${n}`;
  const canvas = h('canvas', { class: 'face-canvas', 'aria-hidden': 'true' });
  const price = h('div', { class: 'clock-price', testid: `${id}-price`, 'aria-label': `Clock ${n} price` }, '—');
  const perUnit = h('div', { class: 'per-unit', testid: `${id}-unit` }, 'CNY');
  const caption = h('div', { class: 'face-caption', testid: `${id}-caption` }, '');
  // The badge's text is the protocol's state word; its Chinese comes from CSS (data-zh), so
  // tests and screen readers read one plain word.
  const state = h('span', { class: 'state-badge', testid: `${id}-state`, dataset: { state: 'idle', zh: '空闲' } }, 'idle');
  const round = h('span', { class: 'round', testid: `${id}-round` }, '');
  const lot = h('div', { class: 'lot-card', testid: `${id}-lot` });
  const remaining = h('span', { class: 'remaining-n', testid: `${id}-remaining` }, '—');
  const ofContainers = h('span', { class: 'remaining-of' }, '');
  const ofZh = h('span', { class: 'remaining-zh', lang: 'zh' }, '');
  const result = h('div', { class: 'result', testid: `${id}-result`, 'aria-live': 'polite' }, '');
  const next = h('ol', { class: 'next-lots', testid: `${id}-next`, dataset: { count: '0' }, 'aria-label': `Next lots on clock ${n}` });
  const quantity = h('input', {
    type: 'number', min: '1', step: '1', value: '1', inputmode: 'numeric', id: `${id}-quantity`,
    testid: `${id}-quantity`, class: 'quantity', 'aria-label': `Containers to buy on clock ${n}`,
  });
  const buy = h('button', { type: 'button', class: 'buy', testid: `${id}-buy`, disabled: true }, 'Buy ', h('span', { lang: 'zh' }, '买'));
  buy.addEventListener('click', () => placeBid(n));
  const root = h(
    'article',
    { class: 'clock-card', testid: id, id, tabindex: '0', dataset: { clock: String(n), state: 'idle' }, 'aria-label': `Clock ${n}` },
    h('header', { class: 'clock-head' },
      h('h2', {}, `Clock ${n} `, h('span', { lang: 'zh', class: 'zh' }, `${n}号钟`)),
      h('div', { class: 'clock-status' }, round, state)),
    lot,
    h('div', { class: 'face' }, canvas, h('div', { class: 'face-center' }, caption, price, perUnit)),
    h('div', { class: 'remaining' }, remaining, ofContainers, ofZh),
    result,
    h('div', { class: 'buy-row' },
      h('label', { class: 'quantity-label' }, h('span', {}, 'Containers ', h('span', { lang: 'zh' }, '箱数')), quantity),
      buy),
    h('section', { class: 'next-box' }, h('h3', {}, 'Next ', h('span', { lang: 'zh' }, '后续拍品')), next),
  );
  root.addEventListener('focusin', () => select(n, false));
  root.addEventListener('pointerdown', () => select(n, false));
  const card = { root, face: new ClockFace(canvas), price, perUnit, caption, state, round, lot, remaining, ofContainers, ofZh, result, quantity, buy, next, nextKey: null, lotId: undefined, pending: false };
  cards.set(n, card);
  renderNext(n);
  return root;
}

function select(n, focus = true) {
  if (!cards.has(n)) return;
  selected = n;
  markSelected();
  if (focus) cards.get(n).root.focus();
}

function markSelected() {
  for (const [n, card] of cards) card.root.classList.toggle('selected', n === selected);
}

function updateCard(n) {
  let card = cards.get(n);
  if (!card) {
    renderClocks();
    card = cards.get(n);
    if (!card) return;
  }
  const c = market.clocks.get(n);
  if (!c) return;
  card.root.dataset.state = c.state;
  card.state.dataset.state = c.state;
  card.state.dataset.zh = CLOCK_STATES[c.state]?.zh ?? '';
  setText(card.state, c.state);
  setText(card.round, c.round ? `Round ${c.round}` : '');
  const lot = c.lot;
  const lotId = lot?.lot_id ?? null;
  if (lotId !== card.lotId) {
    card.lotId = lotId;
    renderLot(card, lot);
    if (lot) card.quantity.value = String(Math.max(1, lot.min_purchase ?? 1));
  }
  card.root.dataset.lot = lotId === null ? '' : String(lotId);
  const unit = lot ? productUnit(lot.product) : null;
  setText(card.perUnit, unit ? `CNY / ${UNITS[unit]?.en ?? unit} 元/${UNITS[unit]?.zh ?? ''}` : 'CNY 元');
  setText(card.remaining, c.remaining ?? '—');
  setText(card.ofContainers, lot ? ` of ${countOf(lot.containers, 'container')} left` : ' no lot on the clock');
  setText(card.ofZh, lot ? ' · 剩余箱数' : ' · 无拍品');
  if (typeof c.remaining === 'number') card.quantity.max = String(Math.max(1, c.remaining));
  renderResult(card, c);
  const canBid = session.hasRole('buyer') && feedOnline && lot !== null && c.round !== null && (c.state === 'running' || c.state === 'pause');
  card.buy.disabled = !canBid || card.pending;
  card.buy.title = !feedOnline ? 'Reconnecting to the market feed' : session.hasRole('buyer') ? (canBid ? 'Space or Enter buys on the selected clock' : 'No round is running') : 'Log in as a buyer to bid';
}

function renderResult(card, c) {
  if (card.notice && card.notice.until > performance.now()) {
    card.result.dataset.kind = 'error';
    return setText(card.result, card.notice.text);
  }
  card.notice = null;
  const r = c.result;
  card.result.dataset.kind = r?.kind ?? '';
  if (!r) return setText(card.result, c.state === 'pre_roll' ? 'Next lot — get ready · 准备' : '');
  if (r.kind === 'sold') {
    setText(card.result, `Sold ${r.containers} × ¥${fenToDecimal(r.priceFen)} · 成交`);
  } else if (r.kind === 'voided') {
    setText(card.result, `Award voided — containers back on the clock · 已撤销`);
  } else {
    setText(card.result, `Unsold: ${countOf(r.containers, 'container')} · 流拍`);
  }
}

function renderLot(card, lot) {
  if (!lot) {
    fill(card.lot, h('div', { class: 'lot-empty' }, 'Waiting for the next lot', h('br'), h('span', { lang: 'zh' }, '等待下一拍品')));
    return;
  }
  const n = card.root.dataset.clock;
  const photo = lotPicture(lot);
  const master = masterParts(lot).join(' · ');
  const provenance = provenanceParts(lot).join(' · ');
  fill(
    card.lot,
    photo,
    h('div', { class: 'lot-info' },
      h('div', { class: 'lot-title' },
        h('span', { class: 'product', testid: `clock-${n}-product` }, productName(lot.product)),
        h('span', { class: `grade grade-${lot.grade}` }, lot.grade)),
      h('div', { class: 'lot-qty' }, lotSize(lot)),
      // One line each, cut with an ellipsis (the whole text on hover): the card's height must
      // depend neither on its width nor on the lot. The master data's and the note's lines are
      // there even when the lot has none.
      h('div', { class: 'lot-master', title: master || null, testid: `clock-${n}-master` }, master || '—'),
      h('div', { class: 'lot-meta' }, lotLink(lot.lot_id, `Lot #${lot.lot_id}`, `clock-${n}-trace`), ` · Grower ${lot.grower} · `,
        h('span', { class: 'qi', testid: `clock-${n}-qi`, dataset: { qi: lot.qi ?? '' }, title: 'The grower’s quality index, last 30 trading days 质量指数' }, `QI ${lot.qi ?? '—'}`),
        lot.min_purchase > 1 ? ` · min ${lot.min_purchase}` : ''),
      h('div', { class: 'lot-meta', title: provenance || null, testid: `clock-${n}-provenance` }, provenance ? `From ${provenance}` : 'Origin —'),
      h('div', { class: 'lot-note', title: lot.note || null, testid: `clock-${n}-note` }, lot.note || '')),
  );
}

/** The next lots of clock `n`'s supply line (`snapshot`, `lot_on_clock`, `supply_line`), each
 *  with its master data; redrawn only when they changed. */
function renderNext(n) {
  const card = cards.get(n);
  const c = market.clocks.get(n);
  if (!card || !c) return;
  const next = c.next ?? [];
  const key = JSON.stringify(next);
  if (key === card.nextKey) return;
  card.nextKey = key;
  card.next.dataset.count = String(next.length);
  if (next.length === 0) {
    fill(card.next, h('li', { class: 'empty' }, 'Nothing more on this clock · 暂无后续'));
    return;
  }
  fill(card.next, ...next.map((lot) => {
    const line = nextLotLine(lot);
    // The row's parts carry no test id of their own: ids under `clock-N-next-` are the rows.
    return h('li', { testid: `clock-${n}-next-${lot.lot_id}`, dataset: { lot: String(lot.lot_id), position: String(lot.position ?? ''), qi: lot.qi ?? '' }, title: line },
      h('div', { class: 'next-head' },
        h('span', { class: 'pos' }, lot.position ? `${lot.position}.` : '·'),
        h('span', { class: 'product' }, productName(lot.product)),
        lotLink(lot.lot_id, `#${lot.lot_id}`),
        h('span', { class: `grade grade-${lot.grade}` }, lot.grade),
        h('span', { class: 'start' }, lot.start_price ? `¥${lot.start_price}` : '')),
      h('div', { class: 'next-master' }, [...masterParts(lot), lot.grower, lotSize(lot)].join(' · '), ' · ',
        h('span', { class: 'qi' }, `QI ${lot.qi ?? '—'}`)));
  }));
}

/** The grower's photo when it has one, else a flower drawn for the product. */
export function lotPicture(lot) {
  const url = String(lot.photo_url ?? '');
  if (/^(https?:\/\/|\/)/.test(url)) {
    const img = h('img', { class: 'lot-photo', src: url, alt: `${productName(lot.product)} photo`, loading: 'lazy', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.replaceWith(flowerDrawing(lot.product)), { once: true });
    return img;
  }
  return flowerDrawing(lot.product);
}

export function flowerDrawing(product) {
  const p = PRODUCTS[product] ?? { hue: (String(product).length * 47) % 360, category: 'other' };
  const petal = `hsl(${p.hue}, 75%, 62%)`;
  const dark = `hsl(${p.hue}, 60%, 38%)`;
  const root = svg('svg', { viewBox: '0 0 64 64', class: 'lot-photo drawn', role: 'img', 'aria-label': `${productName(product)} (no photo)` });
  root.append(svg('rect', { x: 0, y: 0, width: 64, height: 64, rx: 10, fill: '#141c30' }));
  if (p.category === 'foliage') {
    root.append(svg('path', { d: 'M32 58 C32 40 32 24 32 8', stroke: '#5f8f6a', 'stroke-width': 2, fill: 'none' }));
    for (let i = 0; i < 5; i++) {
      const y = 14 + i * 9;
      root.append(svg('ellipse', { cx: 24, cy: y, rx: 8, ry: 4.5, fill: petal, transform: `rotate(-25 24 ${y})` }));
      root.append(svg('ellipse', { cx: 40, cy: y + 4, rx: 8, ry: 4.5, fill: dark, transform: `rotate(25 40 ${y + 4})` }));
    }
    return root;
  }
  const cy = p.category === 'potted_plant' ? 24 : 28;
  root.append(svg('path', { d: `M32 ${cy} L32 58`, stroke: '#5f8f6a', 'stroke-width': 3 }));
  root.append(svg('ellipse', { cx: 24, cy: 46, rx: 7, ry: 3, fill: '#5f8f6a', transform: 'rotate(-30 24 46)' }));
  for (let i = 0; i < 6; i++) {
    root.append(svg('ellipse', { cx: 32, cy: cy - 10, rx: 6, ry: 11, fill: i % 2 ? petal : dark, transform: `rotate(${i * 60} 32 ${cy})` }));
  }
  root.append(svg('circle', { cx: 32, cy, r: 5, fill: '#ffe08a' }));
  if (p.category === 'potted_plant') root.append(svg('path', { d: 'M20 48 L44 48 L40 62 L24 62 Z', fill: '#b5653b' }));
  return root;
}

// ---- drawing the falling price --------------------------------------------------------------

function frame() {
  const now = serverClock.now();
  const t = performance.now();
  for (const [n, card] of cards) {
    const c = market.clocks.get(n);
    if (!c) continue;
    let priceFen = null;
    let resultKind = null;
    let caption = '';
    if (c.result?.kind === 'sold' && c.state !== 'running') {
      priceFen = c.result.priceFen;
      resultKind = 'sold';
      caption = 'Sold 成交';
    } else if (c.state === 'running') {
      priceFen = clockPriceFen(c, now);
    } else if (c.state === 'pre_roll' && c.startFen !== null) {
      priceFen = c.startFen;
      caption = 'Starts at 起拍价';
    } else if (c.result?.kind === 'unsold') {
      resultKind = 'unsold';
      caption = 'Unsold 流拍';
    }
    setText(card.price, priceFen === null ? '—' : fenToDecimal(priceFen));
    card.price.dataset.fen = priceFen === null ? '' : String(priceFen);
    setText(card.caption, caption);
    const since = t - c.changedAt;
    const pulse = resultKind === 'sold' && since < SOLD_PULSE_MS ? Math.abs(Math.sin((since / 200) * Math.PI)) : 0;
    card.root.classList.toggle('just-sold', resultKind === 'sold' && since < SOLD_PULSE_MS);
    card.face.draw({ phase: c.state, priceFen, startFen: c.startFen, result: resultKind, pulse });
  }
  requestAnimationFrame(frame);
}

// ---- bidding ------------------------------------------------------------------------------

async function placeBid(n) {
  const card = cards.get(n);
  const c = market.clocks.get(n);
  if (!card || !c) return;
  if (!session.hasRole('buyer')) return inputError('Log in as a buyer to bid');
  if (!c.lot || c.round === null) return inputError(`No round is running on clock ${n}`);
  const containers = wholeNumber(card.quantity.value);
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  const msg = { type: 'bid', clock: n, lot_id: c.lot.lot_id, round: c.round, containers };
  card.pending = true;
  card.buy.disabled = true;
  card.root.classList.add('bidding');
  let reply = null;
  try {
    reply = await session.request(msg);
  } catch (error) {
    // The banner shows every server error; the card says it too, where the buyer is looking.
    if (error?.type !== 'error' || ['disconnected', 'timeout'].includes(error.code)) showError(error);
    const words = errorWords(error?.code);
    card.notice = { text: `${words.en} ${words.zh}`.trim(), until: performance.now() + NOTICE_MS };
    setTimeout(() => updateCard(n), NOTICE_MS + 50);
  }
  card.pending = false;
  card.root.classList.remove('bidding');
  updateCard(n);
  if (reply) toast(`Bought ${reply.containers} × ¥${reply.price} on clock ${n} — 成交`, 'good');
}

function onKey(event) {
  if (!document.getElementById('view-buyer') || document.getElementById('view-buyer').hidden) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const inQuantity = target instanceof HTMLInputElement && target.classList.contains('quantity');
  const inField = !inQuantity && target instanceof HTMLElement && target.closest('input, select, textarea, form');
  if (inField) return;
  const card = cards.get(selected);
  if (!card) return;
  if (/^[0-9]$/.test(event.key) && !inQuantity) {
    event.preventDefault();
    const c = market.clocks.get(selected);
    const value = event.key === '0' ? Math.max(1, c?.remaining ?? 1) : Number(event.key);
    card.quantity.value = String(value);
    card.quantity.classList.remove('nudge');
    void card.quantity.offsetWidth;
    card.quantity.classList.add('nudge');
  } else if (event.key === 'Enter' || (event.key === ' ' && !inQuantity)) {
    event.preventDefault();
    placeBid(selected);
  } else if ((event.key === 'ArrowRight' || event.key === 'ArrowLeft') && !inQuantity) {
    event.preventDefault();
    const numbers = [...cards.keys()].sort((a, b) => a - b);
    const at = numbers.indexOf(selected);
    const next = numbers[(at + (event.key === 'ArrowRight' ? 1 : numbers.length - 1)) % numbers.length];
    select(next);
  }
}

// ---- credit, awards, standing bids ------------------------------------------------------------

let lastParticipant = null;

function onLogin(info) {
  const buyer = info.roles?.includes('buyer');
  document.body.classList.toggle('is-buyer', Boolean(buyer));
  awards = loadAwards();
  // The standing bids live in the engine: another participant's go at once, and every login (a
  // reload, a reconnect) asks the engine for this one's (`loadStanding`).
  if (info.participant !== lastParticipant) standing.clear();
  lastParticipant = info.participant;
  renderAwards();
  renderStanding();
  for (const n of cards.keys()) updateCard(n);
  refreshAccount();
  if (buyer) {
    refreshLots();
    loadStanding();
  }
}

/** The buyer's standing bids as the engine holds them (`get_standing_bids`): they outlive the
 *  page, so a reload or a second tab shows them. */
async function loadStanding() {
  let reply;
  try {
    reply = await session.request({ type: 'get_standing_bids' });
  } catch {
    return; // the banner says why
  }
  standing = new Map((reply.bids ?? []).map((b) => [b.lot_id, b]));
  renderStanding();
}

function onLogout() {
  lastParticipant = null;
  account = null;
  awards = [];
  standing.clear();
  document.body.classList.remove('is-buyer');
  renderCredit();
  renderAwards();
  renderStanding();
  for (const n of cards.keys()) updateCard(n);
}

function awardsKey() {
  return session.info ? `huashi.awards.${session.info.participant}.${market.day ?? session.info.day}` : null;
}

function loadAwards() {
  try {
    const key = awardsKey();
    return key ? JSON.parse(sessionStorage.getItem(key) ?? '[]') : [];
  } catch {
    return [];
  }
}

function saveAwards() {
  const key = awardsKey();
  if (key) sessionStorage.setItem(key, JSON.stringify(awards.slice(0, 200)));
}

function onAward(a) {
  awards.unshift({ ...a, voided: false });
  if (a.standing) {
    standing.delete(a.lot_id);
    renderStanding();
    toast(`Standing bid won: ${a.containers} × ¥${a.price} (lot ${a.lot_id}) — 委托成交`, 'good');
  }
  saveAwards();
  renderAwards();
  refreshAccount();
}

/** A presale purchase (from the catalogue) is a purchase of the day like a clock award. */
function onPresaleBought(p) {
  // The server numbers a lot's presale purchases (`number`, the `n` of its dispatch ref); an
  // older one does not, and the buyer's own count stands in.
  const n = p.number ?? awards.filter((a) => a.kind === 'presale' && a.lot_id === p.lot_id).length + 1;
  awards.unshift({ ...p, kind: 'presale', n, voided: false });
  saveAwards();
  renderAwards();
  refreshAccount();
}

function onAwardVoided(v) {
  const award = awards.find((a) => a.kind !== 'presale' && a.lot_id === v.lot_id && a.round === v.round && !a.voided);
  if (award) {
    award.voided = true;
    saveAwards();
    renderAwards();
    toast(`Award voided by the operator: lot ${v.lot_id}, round ${v.round} — 已撤销`, 'warn');
  }
  refreshAccount();
}

function renderAwards() {
  const list = $('[data-testid=awards]');
  const live = awards.filter((a) => !a.voided);
  const totalFen = live.reduce((sum, a) => sum + (toFen(a.amount) ?? 0) + (toFen(a.fee) ?? 0), 0);
  setText($('[data-testid=awards-total]'), live.length ? `${countOf(live.length, 'purchase')} · ${cny(fenToDecimal(totalFen))} incl. fees` : '');
  list.dataset.count = String(live.length);
  if (awards.length === 0) {
    fill(list, h('li', { class: 'empty' }, session?.hasRole('buyer') ? 'No purchases yet today · 今日暂无成交' : 'Log in as a buyer to see your purchases'));
    return;
  }
  fill(list, ...awards.map((a) => {
    const lot = market.lots.get(a.lot_id);
    const unit = lot ? productUnit(lot.product) : 'unit';
    const presale = a.kind === 'presale';
    const where = presale ? ` · presale 预售 · lot ${a.lot_id}` : ` · clock ${a.clock} · lot ${a.lot_id} · round ${a.round}${a.standing ? ' · standing bid' : ''}`;
    return h('li', { class: `award${a.voided ? ' voided' : ''}`, testid: presale ? `presale-bought-${a.lot_id}-${a.n}` : `award-${a.lot_id}-${a.round}` },
      h('span', { class: 'when' }, clockTime(a.ts)),
      h('span', { class: 'what' }, lot ? `${productName(lot.product)} ${lot.grade}` : `Lot ${a.lot_id}`, h('small', {}, where)),
      h('span', { class: 'qty' }, `${a.containers} × ${lot?.units_per_container ?? '?'} = ${a.units} ${unitWords(unit, a.units)}`),
      h('span', { class: 'at' }, `@ ¥${a.price}`),
      h('span', { class: 'amount' }, cny(a.amount), h('small', {}, ` + fee ${cny(a.fee)}`)),
      a.voided ? h('span', { class: 'tag' }, 'voided 已撤销') : null);
  }));
}

function refreshAccount() {
  clearTimeout(accountTimer);
  accountTimer = setTimeout(async () => {
    if (!session.info) return renderCredit();
    try {
      account = await session.request({ type: 'get_account' });
    } catch {
      // Shown by the banner when the server said no; a lost connection shows in the header.
    }
    renderCredit();
  }, 120);
}

function renderCredit() {
  const panel = $('#credit');
  panel.classList.toggle('empty', !account);
  setText($('[data-testid=credit-available]'), account ? cny(account.available) : '—');
  setText($('[data-testid=credit-limit]'), account ? cny(account.credit_limit) : '—');
  setText($('[data-testid=credit-exposure]'), account ? cny(account.exposure) : '—');
  setText($('[data-testid=credit-bought]'), account ? cny(account.bought) : '—');
  setText($('[data-testid=credit-fees]'), account ? cny(account.fees) : '—');
  const limit = toFen(account?.credit_limit ?? '');
  const exposure = toFen(account?.exposure ?? '');
  const bar = $('#credit-bar');
  const used = limit && limit > 0 && exposure !== null ? Math.min(1, Math.max(0, exposure / limit)) : 0;
  bar.style.width = `${(used * 100).toFixed(1)}%`;
  bar.classList.toggle('high', used > 0.8);
}

// ---- standing bids ----------------------------------------------------------------------------

let lotTimer = null;
let lastLotRefresh = 0;

/** Refreshes the lots for the standing-bid form at most every 3 s; a refresh already scheduled
 *  is never put off by later clock events (they come faster than that while clocks run). */
function scheduleLotRefresh() {
  if (!session.hasRole('buyer') || lotTimer !== null) return;
  const wait = Math.max(300, 3000 - (performance.now() - lastLotRefresh));
  lotTimer = setTimeout(() => {
    lotTimer = null;
    refreshLots();
  }, wait);
}

async function refreshLots() {
  if (!session.info) return;
  lastLotRefresh = performance.now();
  let reply;
  try {
    reply = await session.request({ type: 'get_lots' });
  } catch {
    return;
  }
  const open = [];
  for (const lot of reply.lots ?? []) {
    market.rememberLot(lot);
    if (['consigned', 'queued', 'on_clock'].includes(lot.status)) open.push(lot);
  }
  const select = $('[data-testid=standing-lot]');
  const chosen = select.value;
  fill(select, h('option', { value: '' }, open.length ? 'Choose a lot · 选择拍品' : 'No open lots · 暂无拍品'),
    ...open.map((lot) => h('option', { value: String(lot.lot_id) },
      `#${lot.lot_id} ${productName(lot.product)} ${lot.grade} — ${lot.remaining}/${lot.containers} × ${lot.units_per_container} (${lot.status.replace('_', ' ')})`)));
  if (open.some((l) => String(l.lot_id) === chosen)) select.value = chosen;
  renderAwards();
  renderStanding();
}

async function onStandingSubmit(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const lotId = wholeNumber(v.lot_id);
  const maxPrice = parseMoneyInput(v.max_price);
  const containers = wholeNumber(v.containers);
  if (!lotId) return inputError('Choose the lot for the standing bid');
  if (!maxPrice) return inputError('Max price must be a positive amount with at most 2 decimals, e.g. 2.50');
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  const reply = await attempt(session.request({ type: 'standing_bid', lot_id: lotId, max_price: maxPrice, containers }));
  if (reply) toast(`Standing bid on lot ${lotId}: up to ¥${reply.max_price} for ${countOf(reply.containers, 'container')}`, 'good');
}

const standingListeners = new Set();

/** This buyer's standing bid on `lotId` ({lot_id, max_price, containers, placed_ts?}), if any. */
export function standingBid(lotId) {
  return standing.get(lotId) ?? null;
}

/** Calls `fn()` whenever the buyer's standing bids change (the catalogue marks its rows). */
export function onStandingChange(fn) {
  standingListeners.add(fn);
}

let standingKey = '';

function renderStanding() {
  const key = JSON.stringify([...standing.values()]);
  if (key !== standingKey) {
    standingKey = key;
    for (const fn of standingListeners) fn();
  }
  const list = $('[data-testid=standing-bids]');
  list.dataset.count = String(standing.size);
  if (standing.size === 0) {
    fill(list, h('li', { class: 'empty' }, 'No standing bids · 暂无委托'));
    return;
  }
  fill(list, ...[...standing.values()].map((s) => {
    const lot = market.lots.get(s.lot_id);
    const cancel = h('button', { type: 'button', class: 'small ghost', testid: `standing-cancel-${s.lot_id}` }, 'Cancel 撤销');
    cancel.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'cancel_standing_bid', lot_id: s.lot_id }));
      if (reply) toast(`Standing bid on lot ${s.lot_id} cancelled`);
    });
    const master = lot ? masterParts(lot).join(' · ') : '';
    return h('li', { testid: `standing-${s.lot_id}`, dataset: { maxPrice: s.max_price, containers: String(s.containers) } },
      h('span', {}, `Lot #${s.lot_id}${lot ? ` ${productName(lot.product)} ${lot.grade}` : ''}`, master ? h('small', {}, ` · ${master}`) : null),
      h('span', { class: 'at' }, `≤ ¥${s.max_price} × ${s.containers}`),
      s.placed_ts ? h('span', { class: 'when' }, clockTime(s.placed_ts)) : null,
      cancel);
  }));
}
