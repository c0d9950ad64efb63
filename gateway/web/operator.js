// The operator console: the day's plan (clock plans by product group with a start time, the draw
// of the grower order, planning the lots onto the clocks), participants (register, credit limit,
// suspend/reinstate), the day's lots and their assignment to clocks by hand, starting, halting and
// configuring clocks, voiding an award, the books' states, reference data, statements and the end
// of the day.

import { market, clockPriceFen } from './state.js';
import { serverClock } from './net.js';
import { cny, fenToDecimal, parseMoneyInput } from './money.js';
import { h, $, fill, setText, clockTime, toast, attempt, inputError, formValues, wholeNumber, integer, throttle } from './ui.js';
import { BOOK_STATES, CLOCK_STATES, LOT_STATUSES, productName, productUnit, unitWords } from './words.js';
import { products, loadProducts, onProducts } from './products.js';
import { masterParts } from './lots.js';

let session;
const rows = new Map(); // clock number → row parts
const drafts = new Map(); // lot_id → {clock, price} typed but not sent
const participants = new Map(); // id → {id, name, roles, limit, active}
const plans = new Map(); // clock → {clock, products, start_time} set from this console
let drawn = null; // order_drawn {day, seed, growers}
let planned = null; // lots_planned {day, assigned, unplanned}
let lots = [];

export function initOperator(theSession) {
  session = theSession;
  market.on('snapshot', () => {
    renderClocks();
    renderBooks();
    renderAwards();
    fillClockSelects();
  });
  market.on('clock', (n) => {
    updateClock(n);
    scheduleLots();
  });
  market.on('award', () => renderAwards());
  market.on('book', () => renderBooks());
  market.on('day', () => {
    renderAwards();
    scheduleLots();
  });
  session.on('login', (info) => {
    document.body.classList.toggle('is-operator', Boolean(info.roles?.includes('operator')));
    if (info.roles?.includes('operator')) {
      refreshLots();
      loadProducts();
    }
    renderForRole();
  });
  session.on('logout', () => {
    document.body.classList.remove('is-operator');
    lots = [];
    renderLots();
    renderForRole();
  });
  session.on('lot_consigned', () => scheduleLots());

  $('#plan-form').addEventListener('submit', onClockPlan);
  $('[data-testid=draw-order]').addEventListener('click', onDrawOrder);
  $('#plan-lots-form').addEventListener('submit', onPlanLots);
  onProducts(renderPlanProducts);
  $('#register-form').addEventListener('submit', onRegister);
  $('#credit-limit-form').addEventListener('submit', onCreditLimit);
  $('#suspend-button').addEventListener('click', () => setActive(false));
  $('#reinstate-button').addEventListener('click', () => setActive(true));
  $('#configure-form').addEventListener('submit', onConfigure);
  $('#lots-filter').addEventListener('change', () => refreshLots());
  $('#lots-refresh').addEventListener('click', () => refreshLots());
  $('#void-form').addEventListener('submit', onVoid);
  $('#product-form').addEventListener('submit', onDefineProduct);
  $('#instrument-form').addEventListener('submit', onDefineInstrument);
  $('#statement-form').addEventListener('submit', onStatement);
  $('#resolve-form').addEventListener('submit', onResolve);
  session.on('complaint_resolved', (c) => {
    if (session.hasRole('operator')) renderResolved(c);
  });
  $('[data-testid=end-of-day]').addEventListener('click', () => {
    $('#end-of-day-confirm-box').hidden = false;
    $('[data-testid=end-of-day-confirm]').focus();
  });
  $('[data-testid=end-of-day-cancel]').addEventListener('click', () => {
    $('#end-of-day-confirm-box').hidden = true;
  });
  $('[data-testid=end-of-day-confirm]').addEventListener('click', onEndOfDay);
  $('[data-testid=new-token-copy]').addEventListener('click', copyToken);
  setInterval(tickPrices, 100);
  renderParticipants();
  renderPlanProducts();
  renderPlans();
  renderDraw();
  renderPlanned();
}

/** What is enabled depends on being the operator: redraw it when that changes. */
function renderForRole() {
  for (const n of rows.keys()) updateClock(n);
  renderBooks();
  renderAwards();
}

// ---- the day's plan (protocol section 11) ---------------------------------------------------------

/** One checkbox per product for the clock plan's product group. */
function renderPlanProducts() {
  const box = $('[data-testid=plan-products]');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  fill(box, h('legend', {}, 'Products ', h('span', { lang: 'zh' }, '品种')),
    ...products().map((p) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'product', value: p.code, testid: `plan-product-${p.code}`, checked: checked.has(p.code) }),
      ` ${productName(p.code) === p.code ? p.name : productName(p.code)}`)));
}

async function onClockPlan(event) {
  event.preventDefault();
  const form = event.target;
  const clock = Number(form.querySelector('select[name=clock]').value);
  const codes = [...form.querySelectorAll('input[name=product]:checked')].map((i) => i.value);
  const start = form.querySelector('input[name=start_time]').value.trim();
  if (!clock) return inputError('Which clock?');
  if (codes.length === 0) return inputError('Choose the products this clock auctions');
  if (start && !/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/.test(start)) return inputError('Start time as HH:MM (market time, +08:00), e.g. 06:30');
  const msg = { type: 'set_clock_plan', clock, products: codes };
  if (start) msg.start_time = start;
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  plans.set(reply.clock, reply);
  renderPlans();
  toast(`Clock ${reply.clock} plan: ${reply.products.join(', ')}${reply.start_time ? ` from ${reply.start_time}` : ''} — 已设定`, 'good');
}

function renderPlans() {
  const body = $('[data-testid=clock-plans] tbody');
  if (plans.size === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 3 }, 'Clock plans set from this console appear here · 尚未设定')));
    return;
  }
  fill(body, ...[...plans.values()].sort((a, b) => a.clock - b.clock).map((p) =>
    h('tr', { testid: `clock-plan-${p.clock}`, dataset: { products: p.products.join(','), startTime: p.start_time ?? '' } },
      h('th', { scope: 'row' }, `Clock ${p.clock}`),
      h('td', {}, p.products.map((code) => productName(code)).join(', ') || '—'),
      h('td', { class: 'num' }, p.start_time ?? 'by hand 手动'))));
}

async function onDrawOrder() {
  const reply = await attempt(session.request({ type: 'draw_order' }));
  if (!reply) return;
  drawn = reply;
  renderDraw();
  toast(`Grower order drawn for ${reply.day}: seed ${reply.seed} — 已抽签`, 'good');
}

/** The drawn order and its seed: anyone can recompute the order from the seed (protocol §11). */
function renderDraw() {
  const box = $('[data-testid=order-drawn]');
  box.hidden = !drawn;
  if (!drawn) return;
  box.dataset.day = drawn.day;
  box.dataset.seed = drawn.seed;
  setText($('[data-testid=order-seed]'), drawn.seed);
  setText($('[data-testid=order-day]'), drawn.day);
  const list = $('[data-testid=order-growers]');
  list.dataset.count = String(drawn.growers.length);
  list.dataset.growers = drawn.growers.join(',');
  if (drawn.growers.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No grower has lots today · 今日无花农寄售'));
    return;
  }
  fill(list, ...drawn.growers.map((g, i) => h('li', { testid: `order-grower-${g}`, dataset: { place: String(i + 1) } }, g)));
}

async function onPlanLots(event) {
  event.preventDefault();
  const markup = formValues(event.target).start_markup_pct;
  const msg = { type: 'plan_lots' };
  if (markup) {
    // A percentage is a decimal string on the wire, like the fees'.
    if (!/^\d{1,4}(\.\d{1,2})?$/.test(markup)) return inputError('Start markup is a percentage, e.g. 50 or 12.5');
    msg.start_markup_pct = markup;
  }
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  planned = reply;
  renderPlanned();
  toast(`${reply.assigned.length} lots planned onto the clocks, ${reply.unplanned.length} without a plan — 排拍完成`, reply.unplanned.length ? 'warn' : 'good');
  refreshLots();
}

function renderPlanned() {
  const box = $('[data-testid=lots-planned]');
  box.hidden = !planned;
  if (!planned) return;
  box.dataset.day = planned.day;
  box.dataset.assigned = String(planned.assigned.length);
  box.dataset.unplanned = String(planned.unplanned.length);
  setText($('[data-testid=lots-planned-summary]'),
    `${planned.day}: ${planned.assigned.length} lots onto the clocks, ${planned.unplanned.length} left unplanned (no clock plan has their product)`);
  const body = $('[data-testid=planned] tbody');
  const byClock = planned.assigned.slice().sort((a, b) => a.clock - b.clock || a.position - b.position);
  fill(body, ...(byClock.length ? byClock.map((a) => {
    const lot = market.lots.get(a.lot_id);
    return h('tr', { testid: `planned-${a.lot_id}`, dataset: { clock: String(a.clock), position: String(a.position), startPrice: a.start_price } },
      h('td', { class: 'num' }, `Clock ${a.clock}`),
      h('td', { class: 'num' }, String(a.position)),
      h('td', { class: 'num' }, `#${a.lot_id}`),
      h('td', {}, lot ? `${productName(lot.product)} ${lot.grade} · ${lot.grower}` : '—'),
      h('td', { class: 'num' }, `¥${a.start_price}`));
  }) : [h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No lot was planned · 无拍品排入'))]));
  const list = $('[data-testid=unplanned]');
  list.dataset.count = String(planned.unplanned.length);
  fill(list, ...planned.unplanned.map((id) => {
    const lot = market.lots.get(id);
    return h('li', { testid: `unplanned-${id}` }, `#${id}${lot ? ` ${productName(lot.product)} ${lot.grade}` : ''}`);
  }));
}

// ---- participants -----------------------------------------------------------------------------

async function onRegister(event) {
  event.preventDefault();
  const form = event.target;
  const v = formValues(form);
  const roles = ['buyer', 'grower', 'logistics'].filter((r) => form.querySelector(`input[name=role-${r}]`).checked);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(v.id)) return inputError('Participant id: 1–32 letters, digits, _ or -');
  if (!v.name) return inputError('Give the participant a name');
  if (roles.length === 0) return inputError('Choose at least one role');
  const msg = { type: 'register_participant', id: v.id, name: v.name, roles };
  if (v.credit_limit) {
    const limit = parseMoneyInput(v.credit_limit, { allowZero: true });
    if (!limit) return inputError('Credit limit must be an amount with at most 2 decimals, e.g. 50000');
    msg.credit_limit = limit;
  }
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  participants.set(reply.id, { id: reply.id, name: v.name, roles, limit: msg.credit_limit ?? null, active: true });
  renderParticipants();
  const box = $('[data-testid=new-token]');
  setText($('[data-testid=new-token-id]'), reply.id);
  setText($('[data-testid=new-token-value]'), reply.token);
  box.hidden = false;
  form.reset();
  toast(`Participant ${reply.id} registered — 注册成功`, 'good');
}

async function copyToken() {
  const token = $('[data-testid=new-token-value]').textContent;
  try {
    await navigator.clipboard.writeText(token);
    toast('Token copied — give it to the participant; it is not shown again');
  } catch {
    const range = document.createRange();
    range.selectNodeContents($('[data-testid=new-token-value]'));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    toast('Select and copy the token by hand (Ctrl+C)');
  }
}

async function onCreditLimit(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const limit = parseMoneyInput(v.limit, { allowZero: true });
  if (!v.participant) return inputError('Which participant?');
  if (!limit) return inputError('Credit limit must be an amount with at most 2 decimals, e.g. 50000');
  const reply = await attempt(session.request({ type: 'set_credit_limit', participant: v.participant, limit }));
  if (!reply) return;
  const p = participants.get(reply.participant) ?? { id: reply.participant, name: '', roles: [], active: true };
  participants.set(reply.participant, { ...p, limit: reply.limit });
  renderParticipants();
  toast(`Credit limit of ${reply.participant}: ${cny(reply.limit)}`, 'good');
}

async function setActive(active) {
  const participant = $('#status-participant').value.trim();
  if (!participant) return inputError('Which participant?');
  const type = active ? 'reinstate_participant' : 'suspend_participant';
  const reply = await attempt(session.request({ type, participant }));
  if (!reply) return;
  const p = participants.get(reply.participant) ?? { id: reply.participant, name: '', roles: [], limit: null };
  participants.set(reply.participant, { ...p, active: reply.active });
  renderParticipants();
  toast(`${reply.participant} is ${reply.active ? 'active again — 已恢复' : 'suspended — 已暂停'}`, reply.active ? 'good' : 'warn');
}

function renderParticipants() {
  const body = $('[data-testid=participants] tbody');
  if (participants.size === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'Participants registered or changed in this session appear here')));
    return;
  }
  fill(body, ...[...participants.values()].map((p) => {
    const pick = h('button', { type: 'button', class: 'small ghost' }, 'Select');
    pick.addEventListener('click', () => {
      $('#credit-limit-form input[name=participant]').value = p.id;
      $('#status-participant').value = p.id;
    });
    return h('tr', { testid: `participant-${p.id}` },
      h('th', { scope: 'row' }, p.id),
      h('td', {}, p.name || '—'),
      h('td', {}, p.roles.join(', ') || '—'),
      h('td', { class: 'num' }, p.limit ? cny(p.limit) : '—'),
      h('td', {}, h('span', { class: `status ${p.active ? 'status-active' : 'status-suspended'}` }, p.active ? 'active 正常' : 'suspended 暂停'), ' ', pick));
  }));
}

// ---- clocks -------------------------------------------------------------------------------------

function renderClocks() {
  const body = $('[data-testid=op-clocks] tbody');
  const numbers = [...market.clocks.keys()].sort((a, b) => a - b);
  if (numbers.length === rows.size && numbers.every((n) => rows.has(n))) {
    for (const n of numbers) updateClock(n);
    return;
  }
  rows.clear();
  fill(body, ...numbers.map((n) => {
    const state = h('span', { class: 'state-badge', testid: `op-clock-${n}-state`, dataset: { state: 'idle', zh: '空闲' } }, 'idle');
    const lot = h('td', { testid: `op-clock-${n}-lot` }, '—');
    const round = h('td', { class: 'num' }, '—');
    const remaining = h('td', { class: 'num' }, '—');
    const price = h('td', { class: 'num op-price', testid: `op-clock-${n}-price` }, '—');
    const start = h('button', { type: 'button', class: 'good', testid: `start-clock-${n}` }, 'Start 开始');
    const halt = h('button', { type: 'button', class: 'danger', testid: `halt-clock-${n}` }, 'Halt 停止');
    start.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'start_clock', clock: n }));
      if (reply) toast(`Clock ${n}: ${reply.state}`, 'good');
    });
    halt.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'halt_clock', clock: n }));
      if (reply) toast(`Clock ${n} halted — the lot is back at the head of its supply line`, 'warn');
    });
    rows.set(n, { state, lot, round, remaining, price, start, halt });
    return h('tr', { testid: `op-clock-${n}` },
      h('th', { scope: 'row' }, `Clock ${n}`),
      h('td', {}, state), lot, round, remaining, price,
      h('td', { class: 'actions' }, start, halt));
  }));
  for (const n of numbers) updateClock(n);
}

function updateClock(n) {
  const row = rows.get(n);
  const c = market.clocks.get(n);
  if (!row || !c) return;
  row.state.dataset.state = c.state;
  row.state.dataset.zh = CLOCK_STATES[c.state]?.zh ?? '';
  setText(row.state, c.state);
  setText(row.lot, c.lot ? `#${c.lot.lot_id} ${productName(c.lot.product)} ${c.lot.grade}` : '—');
  setText(row.round, c.round ?? '—');
  setText(row.remaining, c.remaining ?? '—');
  const operator = session.hasRole('operator');
  row.start.disabled = !operator || c.state !== 'idle';
  row.halt.disabled = !operator || c.state === 'idle';
}

function tickPrices() {
  const now = serverClock.now();
  for (const [n, row] of rows) {
    const c = market.clocks.get(n);
    if (!c) continue;
    let text = '—';
    if (c.state === 'running') text = fenToDecimal(clockPriceFen(c, now));
    else if (c.result?.kind === 'sold' && c.state === 'pause') text = `sold ${fenToDecimal(c.result.priceFen)}`;
    else if (c.state === 'pre_roll' && c.startFen !== null) text = `from ${fenToDecimal(c.startFen)}`;
    setText(row.price, text);
  }
}

function fillClockSelects() {
  const numbers = [...market.clocks.keys()].sort((a, b) => a - b);
  for (const select of document.querySelectorAll('select.clock-select')) {
    const chosen = select.value;
    fill(select, ...numbers.map((n) => h('option', { value: String(n) }, `Clock ${n}`)));
    if (numbers.includes(Number(chosen))) select.value = chosen;
  }
  renderLots();
}

async function onConfigure(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const msg = { type: 'configure_clock', clock: Number(v.clock) };
  if (!msg.clock) return inputError('Which clock?');
  if (v.step) {
    const step = parseMoneyInput(v.step);
    if (!step) return inputError('Step must be a positive amount, e.g. 0.01');
    msg.step = step;
  }
  for (const key of ['tick_ms', 'pre_roll_ms', 'pause_ms', 'restart_ticks', 'multi_buy_ms']) {
    if (v[key] === '') continue;
    const value = wholeNumber(v[key]);
    if (value === null) return inputError(`${key} must be a whole number`);
    msg[key] = value;
  }
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  setText($('[data-testid=clock-configured]'),
    `Clock ${reply.clock}: step ¥${reply.step}, tick ${reply.tick_ms} ms, pre-roll ${reply.pre_roll_ms} ms, pause ${reply.pause_ms} ms, restart ${reply.restart_ticks} ticks, multi-buy ${reply.multi_buy_ms} ms`);
  toast(`Clock ${reply.clock} configured`, 'good');
}

// ---- lots ---------------------------------------------------------------------------------------

/** Refreshes the lots soon: at most one `get_lots` per 700 ms however busy the clocks are. */
const lotsSoon = throttle(() => refreshLots(), 700);
function scheduleLots() {
  if (session.hasRole('operator')) lotsSoon();
}

async function refreshLots() {
  if (!session.hasRole('operator')) return;
  const status = $('#lots-filter').value;
  let reply;
  try {
    reply = await session.request(status ? { type: 'get_lots', status } : { type: 'get_lots' });
  } catch {
    return;
  }
  lots = reply.lots ?? [];
  for (const lot of lots) market.rememberLot(lot);
  renderLots();
  renderAwards();
}

function renderLots() {
  const body = $('[data-testid=op-lots] tbody');
  if (!body) return;
  // Keep what the operator is typing when the list refreshes under it.
  const focused = document.activeElement?.dataset?.testid ?? null;
  if (lots.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 9 }, session?.hasRole('operator') ? 'No lots · 暂无拍品' : 'Log in with the operator token to see the lots')));
    return;
  }
  const numbers = [...market.clocks.keys()].sort((a, b) => a - b);
  fill(body, ...lots.map((lot) => {
    const id = lot.lot_id;
    const draft = drafts.get(id) ?? { clock: String(numbers[0] ?? 1), price: '' };
    const clock = h('select', { class: 'clock-pick', testid: `assign-clock-${id}`, 'aria-label': `Clock for lot ${id}` },
      ...numbers.map((n) => h('option', { value: String(n) }, `Clock ${n}`)));
    clock.value = draft.clock;
    const price = h('input', { type: 'text', inputmode: 'decimal', class: 'price-input', placeholder: 'start price', testid: `assign-price-${id}`, 'aria-label': `Start price for lot ${id}`, value: draft.price });
    const remember = () => drafts.set(id, { clock: clock.value, price: price.value });
    clock.addEventListener('change', remember);
    price.addEventListener('input', remember);
    const assign = h('button', { type: 'button', class: 'small', testid: `assign-${id}` }, 'Assign 排入');
    const withdraw = h('button', { type: 'button', class: 'small ghost danger', testid: `withdraw-${id}` }, 'Withdraw 撤回');
    const assignable = lot.status === 'consigned';
    assign.disabled = !assignable;
    clock.disabled = !assignable;
    price.disabled = !assignable;
    withdraw.disabled = !['consigned', 'queued'].includes(lot.status);
    const submit = async () => {
      const startPrice = parseMoneyInput(price.value);
      if (!startPrice) return inputError(`Start price for lot ${id} must be a positive amount, e.g. 3.50`);
      const reply = await attempt(session.request({ type: 'assign_lot', lot_id: id, clock: Number(clock.value), start_price: startPrice }));
      if (!reply) return;
      drafts.delete(id);
      toast(`Lot ${reply.lot_id} → clock ${reply.clock}, position ${reply.position} — 已排入`, 'good');
      refreshLots();
    };
    assign.addEventListener('click', submit);
    price.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') submit();
    });
    withdraw.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'withdraw_lot', lot_id: id }));
      if (reply) {
        toast(`Lot ${id} withdrawn`, 'warn');
        refreshLots();
      }
    });
    const unit = productUnit(lot.product);
    return h('tr', { testid: `op-lot-${id}`, dataset: { status: lot.status } },
      h('td', { class: 'num' }, `#${id}`),
      h('th', { scope: 'row' }, productName(lot.product), ' ', h('span', { class: `grade grade-${lot.grade}` }, lot.grade),
        h('small', { class: 'master' }, masterParts(lot).map((p) => ` · ${p}`).join(''))),
      h('td', {}, lot.grower),
      h('td', { class: 'num' }, `${lot.containers} × ${lot.units_per_container} ${unitWords(unit, lot.units_per_container)}`),
      h('td', { class: 'num' }, String(lot.remaining)),
      h('td', { class: 'num' }, lot.min_price ? `¥${lot.min_price}` : '—'),
      h('td', {}, h('span', { class: `status status-${lot.status}` }, LOT_STATUSES[lot.status] ?? lot.status)),
      h('td', { class: 'assign', testid: `op-lot-${id}-clock` }, ...(assignable ? [clock, price, assign] : [h('span', { class: 'muted' }, lot.clock ? `clock ${lot.clock} #${lot.position ?? '?'}${lot.start_price ? ` from ¥${lot.start_price}` : ''}` : '—')])),
      h('td', {}, withdraw.disabled ? null : withdraw));
  }));
  if (focused) body.querySelector(`[data-testid="${CSS.escape(focused)}"]`)?.focus();
}

// ---- awards -------------------------------------------------------------------------------------

function renderAwards() {
  const body = $('[data-testid=op-awards] tbody');
  // A multi-buy round has several awards; `void_award` undoes the round's latest standing one
  // first, so only that row offers Void. Rows are numbered within their round for their ids.
  const seen = new Map();
  const numbered = market.clockAwards.map((a) => {
    const key = `${a.clock}-${a.lot_id}-${a.round}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return { a, key, id: n === 1 ? key : `${key}-${n}` };
  });
  const latestStanding = new Map();
  for (const { a, key } of numbered) if (!a.voided) latestStanding.set(key, a);
  const recent = numbered.slice(-40).reverse();
  if (recent.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 7 }, 'No clock awards yet today · 今日暂无成交')));
    return;
  }
  fill(body, ...recent.map(({ a, key, id }) => {
    const lot = market.lots.get(a.lot_id);
    const onClock = market.clocks.get(a.clock)?.lot?.lot_id === a.lot_id;
    const latest = latestStanding.get(key) === a;
    const voidButton = h('button', { type: 'button', class: 'small danger', testid: `void-${id}` }, 'Void 撤销');
    voidButton.disabled = a.voided || !onClock || !latest || !session.hasRole('operator');
    voidButton.title = !onClock
      ? 'Only awards of the lot now on the clock can be voided'
      : latest
        ? 'Undo this award: the containers go back on the clock'
        : 'Void undoes the latest award of this round first';
    voidButton.addEventListener('click', async () => {
      const reply = await attempt(session.request({ type: 'void_award', clock: a.clock, lot_id: a.lot_id, round: a.round }));
      if (reply) toast(`Award voided: clock ${a.clock}, lot ${a.lot_id}, round ${a.round}`, 'warn');
    });
    return h('tr', { class: a.voided ? 'voided' : '', testid: `op-award-${id}` },
      h('td', {}, clockTime(a.ts)),
      h('td', { class: 'num' }, `Clock ${a.clock}`),
      h('td', {}, `#${a.lot_id}${lot ? ` ${productName(lot.product)} ${lot.grade}` : ''}`),
      h('td', { class: 'num' }, String(a.round)),
      h('td', { class: 'num' }, `${a.containers} × ¥${a.price}`),
      h('td', { class: 'num' }, String(a.remaining)),
      h('td', {}, a.voided ? h('span', { class: 'tag' }, 'voided 已撤销') : voidButton));
  }));
}

/** Voids an award by its numbers: for one made before this page was opened. */
async function onVoid(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const [clock, lotId, round] = [wholeNumber(v.clock), wholeNumber(v.lot_id), wholeNumber(v.round)];
  if (!clock || !lotId || !round) return inputError('Clock, lot and round are whole numbers');
  const reply = await attempt(session.request({ type: 'void_award', clock, lot_id: lotId, round }));
  if (reply) {
    toast(`Award voided: clock ${clock}, lot ${lotId}, round ${round}`, 'warn');
    event.target.reset();
  }
}

// ---- books --------------------------------------------------------------------------------------

function renderBooks() {
  const body = $('[data-testid=op-books] tbody');
  const symbols = [...market.books.keys()].sort();
  if (symbols.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 3 }, 'No instruments')));
    return;
  }
  fill(body, ...symbols.map((symbol) => {
    const book = market.books.get(symbol);
    const buttons = Object.entries(BOOK_STATES).map(([state, words]) => {
      const b = h('button', { type: 'button', class: `small${book.state === state ? ' current' : ''}`, testid: `book-state-${symbol}-${state}`, 'aria-pressed': String(book.state === state) }, `${words.en} ${words.zh}`);
      b.disabled = book.state === state || !session.hasRole('operator');
      b.addEventListener('click', async () => {
        const reply = await attempt(session.request({ type: 'set_book_state', symbol, state }));
        if (reply) toast(`${reply.symbol}: ${reply.state}`, 'good');
      });
      return b;
    });
    return h('tr', { testid: `op-book-${symbol}` },
      h('th', { scope: 'row' }, symbol),
      h('td', {}, h('span', { class: 'book-state', testid: `op-book-${symbol}-state`, dataset: { state: book.state } }, book.state)),
      h('td', { class: 'actions' }, ...buttons));
  }));
}

// ---- reference data, statements, end of day -------------------------------------------------------

async function onDefineProduct(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const reply = await attempt(session.request({ type: 'define_product', code: v.code, name: v.name, category: v.category, unit: v.unit }));
  if (reply) {
    toast(`Product ${reply.code} defined`, 'good');
    event.target.reset();
  }
}

async function onDefineInstrument(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const tick = parseMoneyInput(v.tick_size);
  if (!tick) return inputError('Tick size must be a positive amount, e.g. 0.01');
  const msg = { type: 'define_instrument', symbol: v.symbol, product: v.product, tick_size: tick };
  if (v.price_band_pct) {
    const band = wholeNumber(v.price_band_pct);
    if (band === null) return inputError('Price band is a whole percent');
    msg.price_band_pct = band;
  }
  const reply = await attempt(session.request(msg));
  if (reply) {
    toast(`Instrument ${reply.symbol} defined`, 'good');
    event.target.reset();
  }
}

async function onStatement(event) {
  event.preventDefault();
  const v = formValues(event.target);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v.day)) return inputError('Day as YYYY-MM-DD');
  const msg = { type: 'get_statement', day: v.day };
  if (v.participant) msg.participant = v.participant;
  const s = await attempt(session.request(msg));
  const out = $('[data-testid=statement]');
  if (!s) return;
  fill(out,
    h('p', {}, h('b', {}, `${s.participant} · ${s.day}`), ` — bought ${cny(s.total_bought)}, sold ${cny(s.total_sold)}, fees ${cny(s.fees)}, commission ${cny(s.commission)}, corrections ${cny(s.corrections ?? '0.00')}, net `, h('b', { testid: 'statement-net' }, cny(s.net))),
    h('table', { class: 'grid-table compact' },
      h('thead', {}, h('tr', {}, ...['Kind', 'Ref', 'Product', 'Grade', 'Side', 'Price', 'Units', 'Amount', 'Fee'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...(s.lines ?? []).map((l) => h('tr', {},
        h('td', {}, l.kind), h('td', { class: 'num' }, String(l.ref)), h('td', {}, productName(l.product)), h('td', {}, l.grade ?? ''),
        h('td', {}, l.side), h('td', { class: 'num' }, formatPrice(l.price)), h('td', { class: 'num' }, integer(l.units)),
        h('td', { class: 'num' }, cny(l.amount)), h('td', { class: 'num' }, cny(l.fee)))))));
}

/** `resolve_complaint`: the operator's decision on a complaint (protocol section 12). */
async function onResolve(event) {
  event.preventDefault();
  const v = formValues(event.target);
  const id = wholeNumber(v.complaint_id);
  const credit = parseMoneyInput(v.credit, { allowZero: true });
  if (!id) return inputError('Which complaint? Its number');
  if (!credit) return inputError('Credit is an amount with at most 2 decimals (0.00 when rejected)');
  const reply = await attempt(session.request({ type: 'resolve_complaint', complaint_id: id, decision: v.decision, credit }));
  if (reply) toast(`Complaint ${reply.complaint_id} ${reply.decision}, credit ${cny(reply.credit)}`, 'good');
}

function renderResolved(c) {
  const list = $('[data-testid=op-complaints]');
  list.querySelector(`[data-testid="op-complaint-${c.complaint_id}"]`)?.remove();
  list.prepend(h('li', { testid: `op-complaint-${c.complaint_id}`, dataset: { decision: c.decision, credit: c.credit } },
    h('span', { class: 'mono' }, `#${c.complaint_id}`), h('span', {}, c.ref ?? ''), h('span', {}, `${c.decision} · ${cny(c.credit)}`)));
}

function formatPrice(p) {
  return p == null ? '—' : `¥${p}`;
}

async function onEndOfDay() {
  $('#end-of-day-confirm-box').hidden = true;
  const reply = await attempt(session.request({ type: 'end_of_day' }));
  if (!reply) return;
  setText($('[data-testid=day-result]'),
    `Day ${reply.day} settled: ${integer(reply.trades)} ${reply.trades === 1 ? 'trade' : 'trades'}, turnover ${cny(reply.turnover)}, market fees ${cny(reply.fees)}. Next day ${reply.next_day}.`);
  $('#statement-form input[name=day]').value = reply.day;
}
