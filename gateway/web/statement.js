// A participant's statement of a day (`get_statement`, protocol section 8) as the buyer's and the
// grower's pages show it: every line, the `correction` lines of complaints resolved that day
// marked apart (their amount is signed: + credited, − debited), and the totals with
// `corrections` and `net`. One form and one table per page, told apart by a test-id prefix.

import { cny } from './money.js';
import { h, $, fill, attempt, inputError, formValues, integer } from './ui.js';
import { productName } from './words.js';

const KIND_WORDS = { clock: 'Clock 拍卖', book: 'Book 挂牌', presale: 'Presale 预售', correction: 'Correction 更正' };

/**
 * Wires the statement form `#${prefix}-statement-form` (a `day` field) of a view: asks
 * `get_statement {day}` for the logged-in participant and draws it in `[data-testid=${prefix}-statement]`.
 * `defaultDay()` fills the day when the form is left empty.
 */
export function initStatement(session, prefix, defaultDay) {
  const form = $(`#${prefix}-statement-form`);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const day = formValues(form).day || defaultDay() || '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return inputError('Day as YYYY-MM-DD');
    form.querySelector('input[name=day]').value = day;
    const statement = await attempt(session.request({ type: 'get_statement', day }));
    if (statement) renderStatement($(`[data-testid=${prefix}-statement]`), statement, prefix);
  });
  session.on('logout', () => fill($(`[data-testid=${prefix}-statement]`)));
}

/** Draws `statement` into `box`: totals first (net the biggest), then the lines. */
export function renderStatement(box, s, prefix) {
  const lines = s.lines ?? [];
  const corrections = lines.filter((l) => l.kind === 'correction');
  box.dataset.day = s.day;
  box.dataset.participant = s.participant;
  box.dataset.lines = String(lines.length);
  box.dataset.corrections = String(corrections.length);
  const figure = (label, zh, value, id) => h('div', {}, h('dt', {}, label, ' ', h('span', { lang: 'zh' }, zh)), h('dd', { testid: `${prefix}-statement-${id}` }, cny(value)));
  fill(box,
    h('p', { class: 'statement-head' }, h('b', {}, `${s.participant} · ${s.day}`)),
    h('dl', { class: 'figures statement-figures' },
      figure('Bought', '买入', s.total_bought, 'bought'),
      figure('Sold', '卖出', s.total_sold, 'sold'),
      figure('Fees', '费用', s.fees, 'fees'),
      figure('Commission', '佣金', s.commission, 'commission'),
      figure('Corrections', '更正', s.corrections ?? '0.00', 'corrections'),
      figure('Net', '净额', s.net, 'net')),
    lines.length === 0
      ? h('p', { class: 'empty' }, 'No activity that day · 当日无交易')
      : h('div', { class: 'table-scroll' }, h('table', { class: 'grid-table compact' },
        h('thead', {}, h('tr', {}, ...['Kind', 'Ref', 'Product', 'Grade', 'Side', 'Price', 'Units', 'Amount', 'Fee', 'Seat'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...lines.map((l) => statementRow(l, prefix))))));
}

function statementRow(l, prefix) {
  const correction = l.kind === 'correction';
  return h('tr', { class: correction ? 'correction' : '', testid: `${prefix}-statement-line-${l.kind}-${l.ref}`, dataset: { kind: l.kind, amount: l.amount } },
    h('td', {}, correction ? h('span', { class: 'tag correction-tag' }, KIND_WORDS.correction) : (KIND_WORDS[l.kind] ?? l.kind)),
    h('td', { class: 'num' }, correction ? `complaint ${l.ref}` : String(l.ref)),
    h('td', {}, l.product ? productName(l.product) : '—'),
    h('td', {}, l.grade ?? ''),
    h('td', {}, l.side ?? ''),
    h('td', { class: 'num' }, l.price == null ? '—' : `¥${l.price}`),
    h('td', { class: 'num' }, l.units == null ? '—' : integer(l.units)),
    h('td', { class: `num${correction ? ' signed' : ''}` }, correction && !String(l.amount).startsWith('-') ? `+${cny(l.amount)}` : cny(l.amount)),
    h('td', { class: 'num' }, cny(l.fee)),
    h('td', {}, l.seat ?? ''));
}
