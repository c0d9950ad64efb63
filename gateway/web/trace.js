// A lot's public trace at `/lot/{id}` (protocol section 12, `GET /api/lots/{lot_id}`): what anyone
// holding the flowers can learn from the QR code on the delivery note: the lot's master data, its
// grower and quality index, production base and batch, each sale (buyers anonymous), and the
// goods' path from the hall with times, places and temperatures, a cold-chain alarm in red.
// `lotLink` is the link the other views put on a lot.

import { fetchJson } from './net.js';
import { h, $, fill, setText, clockTime } from './ui.js';
import { LOT_STATUSES, productName, maturityName, packagingName, countOf } from './words.js';
import { lotSize } from './lots.js';
import { statusWords } from './dispatch.js';

/** The trace page's path for a lot. */
export function tracePath(lotId) {
  return `/lot/${lotId}`;
}

/** The lot id when the page was opened at `/lot/{id}`, else null. */
export function traceLotFromPath(pathname) {
  const m = /^\/lot\/(\d{1,18})\/?$/.exec(pathname ?? '');
  return m ? Number(m[1]) : null;
}

/** "Lot #12" linking to its trace, opened beside the live page (a buyer at the clock keeps it);
 *  `testid` tells it apart from the same lot's links elsewhere on the page. */
export function lotLink(lotId, text = `Lot #${lotId}`, testid = null) {
  return h('a', { href: tracePath(lotId), target: '_blank', rel: 'noopener', class: 'lot-link', testid, title: 'The lot’s trace 溯源' }, text);
}

let shown = null;

/** Asks for the lot's trace and draws it (again when asked for another lot). */
export async function showTrace(lotId) {
  const box = $('[data-testid=trace]');
  if (shown === lotId && box.dataset.state === 'shown') return;
  shown = lotId;
  box.dataset.lot = String(lotId);
  box.dataset.state = 'loading';
  setText($('[data-testid=trace-title]'), `Lot #${lotId}`);
  fill($('#trace-body'), h('p', { class: 'empty' }, 'Loading the lot’s trace… 正在加载'));
  const trace = await fetchJson(`/api/lots/${lotId}`);
  if (shown !== lotId) return;
  if (!trace || !trace.lot) {
    box.dataset.state = 'missing';
    fill($('#trace-body'), h('p', { class: 'empty', testid: 'trace-missing' }, `No lot #${lotId} in this market · 未找到该拍品`));
    return;
  }
  document.title = `Lot #${lotId} ${productName(trace.lot.product)} — Huashi 花市`;
  renderTrace(trace);
  box.dataset.state = 'shown';
}

function renderTrace(t) {
  const lot = t.lot;
  const grower = t.grower ?? { id: lot.grower, name: lot.grower, qi: lot.qi ?? null };
  const sales = Array.isArray(t.sales) ? t.sales : [];
  const goods = Array.isArray(t.goods) ? t.goods : [];
  const alarmed = goods.filter((g) => g.temperature_alarm || (g.path ?? []).some((p) => p.alarm));
  setText($('[data-testid=trace-title]'), `Lot #${lot.lot_id} · ${productName(lot.product)} ${lot.grade}`);
  const fact = (label, zh, value, testid) => h('div', {},
    h('dt', {}, label, ' ', h('span', { lang: 'zh' }, zh)),
    h('dd', { testid }, value === null || value === undefined || value === '' ? '—' : String(value)));
  fill($('#trace-body'),
    alarmed.length
      ? h('div', { class: 'alarms', role: 'alert', testid: 'trace-alarm', dataset: { count: String(alarmed.length) } },
        h('strong', {}, '⚠ Cold chain alarm ', h('span', { lang: 'zh' }, '冷链温度报警')),
        ` — ${countOf(alarmed.length, 'consignment')} of this lot went above the cold-chain maximum`)
      : null,
    h('div', { class: 'trace-grid' },
      h('section', { class: 'panel' },
        h('header', { class: 'panel-head' }, h('h2', {}, 'The lot ', h('span', { lang: 'zh' }, '拍品信息'))),
        h('dl', { class: 'facts', testid: 'trace-lot' },
          fact('Product', '品种', `${productName(lot.product)} (${lot.product})`, 'trace-product'),
          fact('Grade', '等级', lot.grade, 'trace-grade'),
          fact('Variety', '品种名', lot.variety, 'trace-variety'),
          fact('Stem length', '枝长', typeof lot.stem_length_cm === 'number' ? `${lot.stem_length_cm} cm` : null, 'trace-stem'),
          fact('Maturity', '开放度', lot.maturity ? maturityName(lot.maturity) : null, 'trace-maturity'),
          fact('Packaging', '包装', lot.packaging ? packagingName(lot.packaging) : null, 'trace-packaging'),
          fact('Size', '规格', lotSize(lot), 'trace-size'),
          fact('Origin', '产地', lot.origin, 'trace-origin'),
          fact('Production base', '基地', lot.base, 'trace-base'),
          fact('Batch', '批次', lot.batch, 'trace-batch'),
          fact('Harvest day', '采收日', lot.harvest_day, 'trace-harvest-day'),
          fact('Auction day', '拍卖日', lot.day, 'trace-day'),
          fact('Clock', '拍卖钟', lot.clock ? `Clock ${lot.clock}, #${lot.position ?? '?'}` : null, 'trace-clock'),
          fact('Status', '状态', LOT_STATUSES[lot.status] ?? lot.status, 'trace-status'))),
      h('section', { class: 'panel' },
        h('header', { class: 'panel-head' }, h('h2', {}, 'The grower ', h('span', { lang: 'zh' }, '花农'))),
        h('dl', { class: 'facts' },
          fact('Grower', '花农', grower.name && grower.name !== grower.id ? `${grower.name} (${grower.id})` : grower.id, 'trace-grower'),
          h('div', {}, h('dt', {}, 'Quality index ', h('span', { lang: 'zh' }, '质量指数')),
            h('dd', { testid: 'trace-qi', dataset: { qi: grower.qi ?? '' }, class: grower.qi ? 'qi-big' : 'muted' }, grower.qi ?? 'not rated yet 暂无')))),
      h('section', { class: 'panel' },
        h('header', { class: 'panel-head' }, h('h2', {}, 'Sales ', h('span', { lang: 'zh' }, '成交')), h('small', {}, 'buyers are not named · 买家匿名')),
        salesTable(sales))),
    h('section', { class: 'panel' },
      h('header', { class: 'panel-head' }, h('h2', {}, 'The goods’ path ', h('span', { lang: 'zh' }, '物流轨迹'))),
      h('div', { class: 'trace-goods', testid: 'trace-goods', dataset: { count: String(goods.length) } },
        goods.length === 0 ? h('p', { class: 'empty' }, 'No goods have left the hall yet · 暂无物流记录') : goods.map(goodsCard))));
}

function salesTable(sales) {
  if (sales.length === 0) return h('p', { class: 'empty', testid: 'trace-sales', dataset: { count: '0' } }, 'Not sold yet · 尚未成交');
  return h('table', { class: 'grid-table compact', testid: 'trace-sales', dataset: { count: String(sales.length) } },
    h('thead', {}, h('tr', {}, ...['Time', 'Sale', 'Price / unit', 'Containers', 'Units'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...sales.map((s, i) => h('tr', { testid: `trace-sale-${i + 1}`, dataset: { kind: s.kind, price: s.price, containers: String(s.containers ?? '') } },
      h('td', { class: 'when' }, clockTime(s.ts)),
      h('td', {}, s.kind === 'presale' ? 'Presale 预售' : s.kind === 'clock' ? 'Clock 拍卖' : String(s.kind)),
      h('td', { class: 'num' }, `¥${s.price}`),
      h('td', { class: 'num' }, String(s.containers ?? '—')),
      h('td', { class: 'num' }, String(s.units ?? '—'))))));
}

function goodsCard(g) {
  const path = Array.isArray(g.path) ? g.path : [];
  const alarm = g.temperature_alarm || path.some((p) => p.alarm);
  return h('article', { class: `goods-card${alarm ? ' alarm' : ''}`, testid: `trace-goods-${g.ref}`, dataset: { status: g.status, alarm: String(Boolean(alarm)) } },
    h('header', {},
      h('b', { class: 'mono' }, g.ref),
      ` · ${g.containers == null ? 'book purchase' : countOf(g.containers, 'container')} · `,
      h('span', { class: `dispatch-status dispatch-${g.status}` }, statusWords(g.status)),
      alarm ? h('span', { class: 'alarm-tag' }, ' ⚠ temperature alarm 温度报警') : null),
    path.length === 0
      ? h('p', { class: 'empty' }, 'Awaiting pickup at the hall · 待提货')
      : h('ol', { class: 'path' }, ...path.map((p, i) => h('li', {
        class: p.alarm ? 'alarm' : '',
        testid: `trace-goods-${g.ref}-step-${i + 1}`,
        dataset: { status: p.status, temperature: p.temperature_c ?? '', alarm: String(Boolean(p.alarm)) },
      },
        h('span', { class: 'when' }, clockTime(p.ts)),
        h('span', {}, statusWords(p.status)),
        h('span', {}, p.location || '—'),
        h('span', { class: 'num' }, p.temperature_c == null ? '' : `${p.temperature_c} °C`),
        p.alarm ? h('span', { class: 'alarm-tag' }, '⚠ above the maximum 超温') : null))));
}
