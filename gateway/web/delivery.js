// The buyer's delivery note of a day (`#/delivery-note?day=YYYY-MM-DD`, protocol section 12): a
// printable sheet that goes with the goods, listing the buyer's dispatch lines of the day
// (`get_dispatch {day}`) and, for each lot, the QR code the server draws
// (`/api/lots/{id}/qr.svg`) with the trace's URL written beside it, so whoever holds the flowers
// can open the lot's trace with a phone, or type the URL.

import { apiUrl } from './net.js';
import { h, $, fill, setText, attempt } from './ui.js';
import { productName } from './words.js';
import { statusWords, destinationWords, byRef, lotsOf } from './dispatch.js';
import { tracePath } from './trace.js';

let session;
let visible = false;
let wanted = null; // the day asked for in the URL (null: today)

export function initDeliveryNote(theSession) {
  session = theSession;
  session.on('login', () => visible && load());
  session.on('logout', () => visible && load());
  $('[data-testid=note-print]').addEventListener('click', () => window.print());
  $('#note-day-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const day = $('[data-testid=note-day]').value.trim();
    location.hash = `#/delivery-note${/^\d{4}-\d{2}-\d{2}$/.test(day) ? `?day=${day}` : ''}`;
  });
}

/** Shown by the router with the hash's query (`day=`). */
export function showDeliveryNote(params) {
  visible = true;
  const day = params.get('day');
  wanted = /^\d{4}-\d{2}-\d{2}$/.test(day ?? '') ? day : null;
  load();
}

export function hideDeliveryNote() {
  visible = false;
}

/** The absolute URL of a lot's trace, as the QR code encodes it. */
export function traceUrl(lotId) {
  return `${location.origin}${tracePath(lotId)}`;
}

async function load() {
  const sheet = $('[data-testid=delivery-note]');
  const body = $('#note-body');
  sheet.dataset.state = 'loading';
  if (!session.hasRole('buyer')) {
    sheet.dataset.state = 'login';
    setText($('[data-testid=note-buyer]'), '—');
    fill(body, h('p', { class: 'empty' }, 'Log in as a buyer to print your delivery note · 请以买家身份登录'));
    return;
  }
  const msg = { type: 'get_dispatch' };
  if (wanted) msg.day = wanted;
  const reply = await attempt(session.request(msg));
  if (!visible) return;
  if (!reply) {
    sheet.dataset.state = 'error';
    fill(body, h('p', { class: 'empty' }, 'The market keeps the goods of today and of the previous trading day · 仅保留今日与前一交易日'));
    return;
  }
  render(reply);
  sheet.dataset.state = 'shown';
}

function render(reply) {
  const lines = (reply.lines ?? []).slice().sort(byRef);
  const sheet = $('[data-testid=delivery-note]');
  sheet.dataset.day = reply.day;
  sheet.dataset.count = String(lines.length);
  $('[data-testid=note-day]').value = reply.day;
  setText($('[data-testid=note-buyer]'), reply.buyer ?? session.info?.participant ?? '');
  setText($('[data-testid=note-date]'), reply.day);
  const destinations = [...new Set(lines.map((l) => l.destination).filter(Boolean))];
  setText($('[data-testid=note-destination]'), destinations.length ? destinations.map(destinationWords).join('; ') : destinationWords(''));
  setText($('[data-testid=note-printed]'), new Date().toLocaleString('en-GB', { timeZone: 'Asia/Shanghai', hour12: false }));
  const lots = lotsOf(lines);
  fill($('#note-body'),
    h('table', { class: 'note-table' },
      h('thead', {}, h('tr', {}, ...['Ref', 'Lot', 'Product', 'Grade', 'Containers', 'Units', 'Destination', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...(lines.length
        ? lines.map((l) => h('tr', { testid: `note-line-${l.ref}`, dataset: { lot: String(l.lot_id ?? ''), status: l.status } },
          h('td', { class: 'mono' }, l.ref),
          h('td', {}, l.lot_id == null ? '—' : `#${l.lot_id}`),
          h('td', {}, productName(l.product)),
          h('td', {}, l.grade ?? '—'),
          h('td', { class: 'num' }, l.containers == null ? '—' : String(l.containers)),
          h('td', { class: 'num' }, String(l.units)),
          h('td', {}, destinationWords(l.destination)),
          h('td', {}, statusWords(l.status))))
        : [h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No goods that day · 当日无货物'))]))),
    lots.length === 0 ? null : h('section', { class: 'note-lots' },
      h('h2', {}, 'Trace each lot ', h('span', { lang: 'zh' }, '扫码溯源')),
      h('div', { class: 'note-qrs' }, ...lots.map((id) => {
        const url = traceUrl(id);
        return h('figure', { class: 'note-lot', testid: `note-lot-${id}` },
          // The white margin around the code is its quiet zone: a reader needs it.
          h('div', { class: 'qr-box', testid: `note-qr-box-${id}` },
            h('img', { src: apiUrl(`/api/lots/${id}/qr.svg`), width: '168', height: '168', alt: `QR code of ${url}`, testid: `note-qr-${id}` })),
          h('figcaption', {}, h('b', {}, `Lot #${id}`), h('br'), h('span', { class: 'mono', testid: `note-url-${id}` }, url)));
      }))));
}
