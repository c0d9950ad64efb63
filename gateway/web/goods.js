// The buyer's goods after the sale (protocol section 12), on the clock view below the purchases:
// the day's dispatch lines (`get_dispatch`) moving live (`dispatch_updated`), a reading above the
// cold-chain maximum shown at the top of the view (`temperature_alarm`), where the goods go
// (`set_destination`), a complaint on a line (`file_complaint`) and its outcome
// (`complaint_resolved`), and the buyer's statement of a day with its corrections.

import { market } from './state.js';
import { h, $, fill, setText, clockTime, toast, attempt, inputError, formValues, wholeNumber, throttle } from './ui.js';
import { productName, countOf } from './words.js';
import { cny } from './money.js';
import { statusWords, destinationWords, mergeLine, byRef, complainable, complaintUnit, COMPLAINT_REASONS } from './dispatch.js';
import { initStatement } from './statement.js';
import { lotLink } from './trace.js';

let session;
let lines = []; // this buyer's dispatch lines of the day, by ref
let day = null; // the day they are of
let alarms = new Map(); // ref → temperature_alarm {…} pushed to this session
let complaints = []; // {complaint_id, ref, reason, containers, note, decision, credit}, newest first
let complaining = null; // the ref whose complaint form is open

export function initGoods(theSession) {
  session = theSession;
  session.on('login', onLogin);
  session.on('logout', () => {
    lines = [];
    alarms = new Map();
    complaints = [];
    complaining = null;
    render();
  });
  session.on('dispatch_updated', (line) => {
    if (!isBuyer()) return;
    if (line.day && day && line.day !== day) return;
    lines = mergeLine(lines, line);
    render();
  });
  session.on('temperature_alarm', (a) => {
    if (!isBuyer()) return;
    alarms.set(a.ref, a);
    const line = lines.find((l) => l.ref === a.ref);
    if (line) lines = mergeLine(lines, { ...line, temperature_alarm: true, temperature_c: a.temperature_c, location: a.location ?? line.location, updated_ts: a.ts });
    toast(`Cold chain alarm: ${productName(a.product)} (${a.ref}) at ${a.temperature_c} °C, above ${a.max_temperature_c} °C — 温度报警`, 'warn');
    render();
  });
  session.on('complaint_filed', (c) => {
    if (complaints.some((k) => k.complaint_id === c.complaint_id)) return;
    complaints.unshift({ ...c, decision: null, credit: null });
    saveComplaints();
    renderComplaints();
  });
  session.on('complaint_resolved', (c) => {
    if (!isBuyer()) return;
    const known = complaints.find((k) => k.complaint_id === c.complaint_id);
    if (known) Object.assign(known, { decision: c.decision, credit: c.credit });
    else complaints.unshift({ ...c });
    saveComplaints();
    renderComplaints();
    toast(`Complaint ${c.complaint_id} ${c.decision}${c.decision === 'accepted' ? `: credit ${cny(c.credit)}` : ''} — 投诉已处理`, c.decision === 'accepted' ? 'good' : 'warn');
  });
  // A purchase makes a line (and a void removes one) in the same command: ask for the lines again.
  for (const type of ['award', 'award_voided', 'presale_bought', 'fill', 'destination_set']) session.on(type, () => refreshSoon());
  market.on('day', () => {
    day = null;
    refreshSoon();
  });
  $('#dispatch-refresh').addEventListener('click', () => refresh());
  $('#destination-form').addEventListener('submit', onDestination);
  $('#complaint-form').addEventListener('submit', onComplaint);
  $('#complaint-cancel').addEventListener('click', () => openComplaint(null));
  initStatement(session, 'buyer', () => day ?? market.day ?? session.info?.day);
  render();
}

function isBuyer() {
  return session.hasRole('buyer');
}

function onLogin(info) {
  lines = [];
  alarms = new Map();
  complaints = loadComplaints();
  complaining = null;
  day = null;
  render();
  if (info.roles?.includes('buyer')) {
    refresh();
    const form = $('#buyer-statement-form');
    if (!form.querySelector('input[name=day]').value) form.querySelector('input[name=day]').value = market.day ?? info.day ?? '';
  }
}

const refreshSoon = throttle(() => refresh(), 500);

async function refresh() {
  if (!isBuyer()) return;
  const reply = await attempt(session.request({ type: 'get_dispatch' }));
  if (!reply) return;
  day = reply.day;
  // A live update newer than the answer wins (mergeLine keeps the newest copy of a line).
  let next = (reply.lines ?? []).slice().sort(byRef);
  for (const old of lines) {
    const fresh = next.find((l) => l.ref === old.ref);
    if (fresh && (old.updated_ts ?? 0) > (fresh.updated_ts ?? 0)) next = mergeLine(next, old);
  }
  lines = next;
  render();
}

function render() {
  renderAlarms();
  renderLines();
  renderDestination();
  renderComplaintForm();
  renderComplaints();
}

// ---- the lines -----------------------------------------------------------------------------------

function renderLines() {
  const table = $('[data-testid=dispatch]');
  const body = table.querySelector('tbody');
  table.dataset.count = String(lines.length);
  setText($('[data-testid=dispatch-day]'), day ?? '');
  const link = $('[data-testid=delivery-note-link]');
  link.href = `#/delivery-note${day ? `?day=${day}` : ''}`;
  if (lines.length === 0) {
    const why = isBuyer() ? 'Nothing bought today yet · 今日暂无货物' : 'Log in as a buyer to follow your goods';
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 10 }, why)));
    return;
  }
  fill(body, ...lines.map(lineRow));
}

function lineRow(l) {
  const id = `dispatch-${l.ref}`;
  const complain = h('button', { type: 'button', class: 'small ghost', testid: `complain-${l.ref}` }, 'Complain 投诉');
  complain.addEventListener('click', () => openComplaint(l.ref));
  return h('tr', {
    testid: id,
    class: `${l.temperature_alarm ? 'alarm' : ''}${l.ref === complaining ? ' chosen' : ''}`,
    dataset: { status: l.status, alarm: String(Boolean(l.temperature_alarm)), temperature: l.temperature_c ?? '', destination: l.destination ?? '', location: l.location ?? '' },
  },
    h('td', { class: 'mono' }, l.ref, l.seat ? h('small', {}, ` · seat ${l.seat}`) : null),
    h('td', {}, typeof l.lot_id === 'number' ? lotLink(l.lot_id, `#${l.lot_id}`, `${id}-trace`) : '—'),
    h('th', { scope: 'row' }, productName(l.product), l.grade ? ' ' : '', l.grade ? h('span', { class: `grade grade-${l.grade}` }, l.grade) : null),
    h('td', { class: 'num' }, l.containers == null ? `${l.units} units` : `${countOf(l.containers, 'container')} · ${l.units} units`),
    h('td', {}, destinationWords(l.destination)),
    h('td', {}, h('span', { class: `dispatch-status dispatch-${l.status}`, testid: `${id}-status` }, statusWords(l.status))),
    h('td', {}, l.location || '—'),
    h('td', { class: 'num', testid: `${id}-temperature` }, l.temperature_c == null ? '—' : `${l.temperature_c} °C`,
      l.temperature_alarm ? h('span', { class: 'alarm-tag', testid: `${id}-alarm` }, ' ⚠ alarm 报警') : null),
    h('td', { class: 'when' }, clockTime(l.updated_ts)),
    h('td', {}, complain));
}

// ---- cold-chain alarms: at the top of the view, where the buyer looks -------------------------------

function renderAlarms() {
  const box = $('[data-testid=temperature-alarms]');
  const flagged = lines.filter((l) => l.temperature_alarm).map((l) => ({ line: l, alarm: alarms.get(l.ref) }));
  for (const [ref, alarm] of alarms) if (!flagged.some((f) => f.line.ref === ref)) flagged.push({ line: null, alarm });
  box.hidden = flagged.length === 0;
  box.dataset.count = String(flagged.length);
  fill(box, h('strong', {}, '⚠ Cold chain alarm ', h('span', { lang: 'zh' }, '冷链温度报警')),
    ...flagged.map(({ line, alarm }) => {
      const ref = line?.ref ?? alarm.ref;
      const t = alarm?.temperature_c ?? line?.temperature_c;
      const where = alarm?.location || line?.location;
      return h('div', { class: 'alarm-item', testid: `alarm-${ref}`, dataset: { temperature: t ?? '', max: alarm?.max_temperature_c ?? '' } },
        `${productName(line?.product ?? alarm.product)} · ${ref}: ${t ?? '?'} °C`,
        alarm?.max_temperature_c ? ` (max ${alarm.max_temperature_c} °C)` : '',
        where ? ` at ${where}` : '',
        alarm?.ts ? ` · ${clockTime(alarm.ts)}` : '');
    }));
}

// ---- destination ----------------------------------------------------------------------------------

function renderDestination() {
  const current = lines.find((l) => l.destination)?.destination ?? '';
  const out = $('[data-testid=destination-current]');
  out.dataset.destination = current;
  setText(out, isBuyer() ? destinationWords(current) : '');
  $('[data-testid=destination-submit]').disabled = !isBuyer();
}

async function onDestination(event) {
  event.preventDefault();
  const v = formValues(event.target);
  if (!v.place) return inputError(v.kind === 'pickup' ? 'Which dock? e.g. D12' : 'Delivery address');
  const reply = await attempt(session.request({ type: 'set_destination', destination: `${v.kind}:${v.place}` }));
  if (!reply) return;
  const out = $('[data-testid=destination-current]');
  out.dataset.destination = reply.destination;
  setText(out, destinationWords(reply.destination));
  toast(`Goods of ${reply.day}: ${destinationWords(reply.destination)}`, 'good');
  refresh();
}

// ---- complaints -----------------------------------------------------------------------------------

function openComplaint(ref) {
  complaining = ref;
  render();
  if (ref) $('[data-testid=complaint-containers]').focus();
}

function renderComplaintForm() {
  const form = $('#complaint-form');
  const line = lines.find((l) => l.ref === complaining);
  form.hidden = !line;
  if (!line) return;
  form.dataset.ref = line.ref;
  const unit = line.containers == null ? 'units' : 'containers';
  setText($('[data-testid=complaint-ref]'), `${line.ref} · ${productName(line.product)} ${line.grade ?? ''} · up to ${complainable(line)} ${unit}`);
  setText($('#complaint-unit'), line.containers == null ? 'Units 数量' : 'Containers 箱数');
  const input = $('[data-testid=complaint-containers]');
  input.max = String(complainable(line));
}

async function onComplaint(event) {
  event.preventDefault();
  const ref = complaining;
  if (!ref) return;
  const v = formValues(event.target);
  const containers = wholeNumber(v.containers);
  if (!containers) return inputError('Containers must be a whole number of at least 1');
  const msg = { type: 'file_complaint', ref, reason: v.reason, containers };
  if (v.note) msg.note = v.note;
  const reply = await attempt(session.request(msg));
  if (!reply) return;
  const known = complaints.find((k) => k.complaint_id === reply.complaint_id);
  if (known) known.note = v.note ?? '';
  saveComplaints();
  event.target.reset();
  complaining = null;
  toast(`Complaint ${reply.complaint_id} filed on ${reply.ref} — 投诉已提交`, 'good');
  render();
}

function renderComplaints() {
  const list = $('[data-testid=complaints]');
  list.dataset.count = String(complaints.length);
  if (complaints.length === 0) {
    fill(list, h('li', { class: 'empty' }, isBuyer() ? 'No complaints · 暂无投诉' : 'Log in as a buyer to see your complaints'));
    return;
  }
  fill(list, ...complaints.map((c) => {
    const status = c.decision ?? 'open';
    const reason = COMPLAINT_REASONS[c.reason];
    return h('li', { testid: `complaint-${c.complaint_id}`, dataset: { status, decision: c.decision ?? '', credit: c.credit ?? '', ref: c.ref } },
      h('span', { class: 'mono' }, `#${c.complaint_id}`),
      h('span', {}, `${c.ref}`, reason ? ` · ${reason.en} ${reason.zh}` : '', ` · ${countOf(c.containers, complaintUnit(c.ref))}`),
      c.note ? h('small', {}, c.note) : null,
      h('span', { class: `complaint-outcome outcome-${status}`, testid: `complaint-${c.complaint_id}-outcome` },
        status === 'open' ? 'open 待处理' : status === 'accepted' ? `accepted 已受理 · credit ${cny(c.credit)}` : 'rejected 已驳回'));
  }));
}

function complaintsKey() {
  return session.info ? `huashi.complaints.${session.info.participant}` : null;
}

function loadComplaints() {
  try {
    const key = complaintsKey();
    return key ? JSON.parse(sessionStorage.getItem(key) ?? '[]') : [];
  } catch {
    return [];
  }
}

function saveComplaints() {
  const key = complaintsKey();
  if (key) sessionStorage.setItem(key, JSON.stringify(complaints.slice(0, 200)));
}
