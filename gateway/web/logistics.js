// The logistics page (`#/logistics`, protocol section 12), made for a tablet in a cold store: the
// day's dispatch lines of every buyer (`get_dispatch` without `buyer`) grouped by loading dock
// (`pickup:<dock>`), the deliveries apart, then by status; on each line big buttons move it on
// (`update_dispatch`, never back, a step may be skipped) and record a reading (temperature and
// location). The page follows its own replies (`dispatch_updated`, the whole line) and asks again
// when the feed reports a sale (a new line).

import { market } from './state.js';
import { h, $, fill, setText, clockTime, toast, attempt, inputError, throttle } from './ui.js';
import { productName, countOf } from './words.js';
import { products, loadProducts, onProducts } from './products.js';
import { statusWords, laterStatuses, nextStatus, groupByDock, mergeLine, byRef, parseTemperature, aboveMax, destinationWords, DISPATCH_WORDS } from './dispatch.js';
import { lotLink } from './trace.js';

let session;
let visible = false;
let lines = [];
let day = null;
const drafts = new Map(); // ref → {temperature, location} typed but not sent

export function initLogistics(theSession) {
  session = theSession;
  session.on('login', () => {
    lines = [];
    day = null;
    drafts.clear();
    if (canMove()) {
      loadProducts();
      refresh();
    }
    render();
  });
  session.on('logout', () => {
    lines = [];
    render();
  });
  // The replies to this page's moves, and any other line's move the session hears of.
  session.on('dispatch_updated', (line) => {
    if (!canMove() || (day && line.day && line.day !== day)) return;
    lines = mergeLine(lines, line);
    render();
  });
  // A sale makes a line: the feed tells of every one (a clock award, a book trade, a presale).
  market.on('event', (e) => {
    if (visible && canMove() && ['clock_award', 'award_voided', 'trade', 'presale'].includes(e.type)) refreshSoon();
  });
  market.on('day', () => {
    day = null;
    refreshSoon();
  });
  onProducts(render);
  $('#logistics-refresh').addEventListener('click', () => refresh());
  $('#logistics-day-form').addEventListener('submit', (event) => {
    event.preventDefault();
    refresh();
  });
  render();
}

export function showLogistics() {
  visible = true;
  if (canMove()) refresh();
}

export function hideLogistics() {
  visible = false;
}

function canMove() {
  return session.hasRole('logistics') || session.hasRole('operator');
}

const refreshSoon = throttle(() => refresh(), 700);

async function refresh() {
  if (!canMove()) return;
  const wanted = $('[data-testid=logistics-day]').value.trim();
  const msg = { type: 'get_dispatch' };
  if (/^\d{4}-\d{2}-\d{2}$/.test(wanted)) msg.day = wanted;
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  day = reply.day;
  lines = (reply.lines ?? []).slice().sort(byRef);
  render();
}

/** The cold-chain maximum of a product's category (`get_products`' `max_temperature_c`). */
function maxOf(product) {
  return products().find((p) => p.code === product)?.max_temperature_c ?? null;
}

function render() {
  const board = $('[data-testid=logistics]');
  board.dataset.count = String(lines.length);
  board.dataset.day = day ?? '';
  setText($('[data-testid=logistics-summary]'), canMove()
    ? `${day ?? ''} · ${countOf(lines.length, 'line')} · ${lines.filter((l) => l.status !== 'delivered').length} still to move`
    : '');
  if (!canMove()) {
    fill(board, h('p', { class: 'empty' }, 'Log in with a logistics token to move the goods · 请使用物流令牌登录'));
    return;
  }
  // Keep the field being typed in when the board is drawn again under it.
  const focused = document.activeElement?.dataset?.testid ?? null;
  const groups = groupByDock(lines);
  if (groups.length === 0) {
    fill(board, h('p', { class: 'empty' }, 'No goods to move · 暂无货物'));
    return;
  }
  fill(board, ...groups.map((g) => {
    const title = g.kind === 'pickup' ? `Dock ${g.place}` : g.kind === 'delivery' ? 'Deliveries' : 'No destination yet';
    const zh = g.kind === 'pickup' ? '提货口' : g.kind === 'delivery' ? '配送' : '未指定';
    const count = g.statuses.reduce((n, s) => n + s.lines.length, 0);
    return h('section', { class: 'dock', testid: `log-group-${g.key}`, dataset: { count: String(count) } },
      h('h2', {}, title, ' ', h('span', { lang: 'zh' }, zh), h('small', {}, ` · ${countOf(count, 'line')}`)),
      ...g.statuses.map((s) => h('div', { class: 'dock-status', testid: `log-group-${g.key}-${s.status}`, dataset: { count: String(s.lines.length) } },
        h('h3', {}, statusWords(s.status)),
        h('div', { class: 'log-lines' }, ...s.lines.map(lineCard)))));
  }));
  if (focused) board.querySelector(`[data-testid="${CSS.escape(focused)}"]`)?.focus();
}

function lineCard(l) {
  const id = `log-line-${l.ref}`;
  const max = maxOf(l.product);
  const draft = drafts.get(l.ref) ?? { temperature: '', location: '' };
  const temperature = h('input', { type: 'text', inputmode: 'decimal', class: 'touch-input', placeholder: '°C', value: draft.temperature, testid: `temp-${l.ref}`, 'aria-label': `Temperature of ${l.ref} in °C` });
  const location = h('input', { type: 'text', class: 'touch-input wide-input', placeholder: $('[data-testid=logistics-location]').value || 'where', value: draft.location, testid: `place-${l.ref}`, 'aria-label': `Location of ${l.ref}` });
  const warn = () => temperature.classList.toggle('over', aboveMax(parseTemperature(temperature.value), max));
  const remember = () => {
    drafts.set(l.ref, { temperature: temperature.value, location: location.value });
    warn();
  };
  warn();
  temperature.addEventListener('input', remember);
  location.addEventListener('input', remember);
  const delivered = l.status === 'delivered';
  const next = nextStatus(l.status);
  const moves = laterStatuses(l.status).map((status) => {
    const b = h('button', { type: 'button', class: `touch${status === next ? ' primary' : ' ghost'}`, testid: `move-${l.ref}-${status}` },
      `→ ${DISPATCH_WORDS[status].en}`, h('span', { lang: 'zh' }, ` ${DISPATCH_WORDS[status].zh}`));
    b.addEventListener('click', () => move(l, status, temperature.value, location.value));
    return b;
  });
  const record = h('button', { type: 'button', class: 'touch ghost', testid: `record-${l.ref}`, disabled: delivered }, 'Record reading ', h('span', { lang: 'zh' }, '记录'));
  record.addEventListener('click', () => move(l, l.status, temperature.value, location.value, true));
  return h('article', {
    class: `log-line${l.temperature_alarm ? ' alarm' : ''}`,
    testid: id,
    dataset: { status: l.status, alarm: String(Boolean(l.temperature_alarm)), temperature: l.temperature_c ?? '', location: l.location ?? '', destination: l.destination ?? '' },
  },
    h('header', {},
      h('b', { class: 'mono' }, l.ref),
      h('span', {}, ` ${productName(l.product)} ${l.grade ?? ''}`),
      h('span', { class: 'muted' }, ` · ${l.containers == null ? `${l.units} units` : `${countOf(l.containers, 'container')}, ${l.units} units`}`),
      typeof l.lot_id === 'number' ? [' · ', lotLink(l.lot_id, `Lot #${l.lot_id}`, `${id}-trace`)] : null),
    h('div', { class: 'log-facts' },
      h('span', {}, `Buyer ${l.buyer}${l.seat ? ` (seat ${l.seat})` : ''}`),
      h('span', {}, destinationWords(l.destination)),
      h('span', { class: `dispatch-status dispatch-${l.status}`, testid: `${id}-status` }, statusWords(l.status)),
      h('span', { testid: `${id}-temperature`, class: l.temperature_alarm ? 'alarm-tag' : '' },
        l.temperature_c == null ? 'no reading' : `${l.temperature_c} °C${l.temperature_alarm ? ' ⚠ alarm 报警' : ''}`),
      h('span', { testid: `${id}-location` }, l.location || '—'),
      max ? h('span', { class: 'muted' }, `max ${max} °C`) : null,
      l.updated_ts ? h('span', { class: 'when' }, clockTime(l.updated_ts)) : null),
    delivered ? null : h('div', { class: 'log-reading' },
      h('label', {}, 'Temperature °C ', h('span', { lang: 'zh' }, '温度'), temperature),
      h('label', {}, 'Location ', h('span', { lang: 'zh' }, '位置'), location),
      record),
    delivered ? h('p', { class: 'done' }, 'Delivered ✓ 已送达') : h('div', { class: 'log-moves' }, ...moves));
}

async function move(line, status, temperatureText, locationText, readingOnly = false) {
  const msg = { type: 'update_dispatch', ref: line.ref, status };
  if (temperatureText.trim()) {
    const t = parseTemperature(temperatureText);
    if (t === null) return inputError('Temperature in °C with at most 2 decimals, between -50 and 60, e.g. 6.5');
    msg.temperature_c = t;
  }
  const place = locationText.trim() || $('[data-testid=logistics-location]').value.trim();
  if (place) msg.location = place;
  if (readingOnly && msg.temperature_c === undefined && msg.location === undefined) return inputError('Type a temperature or a location to record');
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  drafts.delete(line.ref);
  // The reply is the whole line (also heard through 'dispatch_updated'; merging twice is harmless).
  lines = mergeLine(lines, reply);
  render();
  toast(`${reply.ref}: ${statusWords(reply.status)}${reply.temperature_c ? ` · ${reply.temperature_c} °C` : ''}${reply.temperature_alarm ? ' ⚠' : ''}`, reply.temperature_alarm ? 'warn' : 'good');
}
