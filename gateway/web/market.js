// The market page: the SFCI and its sub-indices over the settled days and today, today's
// statistics per product and grade, the clearance of the clocks, the clock sales, the public order
// books and the latest trades (seeded from `/api/trades`, then followed on the feed). The JSON
// endpoints may be missing (404) or empty; the page then says so.

import { market, sortedLevels, seedTrades } from './state.js';
import { fetchJson } from './net.js';
import { lineChart } from './chart.js';
import { cny, formatMoney, toFen } from './money.js';
import { h, $, fill, setText, clockTime, integer } from './ui.js';
import { INDICES, BOOK_STATES, productName } from './words.js';
import { lotLink } from './trace.js';

const BOOK_LEVELS_SHOWN = 8;

let history = []; // [{day, closes: {code: "1000.00"}}]
let marketDay = null;
let cells = new Map(); // "PRODUCT|GRADE" → cell
let clearance = [];
let renderTimer = null;
let visible = false;

export function initMarket() {
  market.on('snapshot', () => {
    renderTiles();
    renderBooks();
    renderTape();
    // Sales made while the feed was away (or between the page's first fetch and its snapshot)
    // are in neither: clearing has seen every output up to the snapshot, so ask it again.
    if (visible) refetchTrades();
  });
  market.on('index', () => {
    renderTiles();
    scheduleCharts();
  });
  market.on('stats', (e) => {
    cells.set(`${e.product}|${e.grade}`, e);
    renderStats(`${e.product}|${e.grade}`);
  });
  market.on('book', () => renderBooks());
  market.on('trade', () => renderTrades());
  market.on('award', () => renderTape());
  market.on('day', () => {
    cells.clear();
    if (visible) load();
  });
  $('#market-refresh').addEventListener('click', () => load());
  window.addEventListener('resize', () => scheduleCharts());
  renderTiles();
  renderStats();
  renderClearance();
  renderBooks();
  renderTrades();
  renderTape();
}

/** Called when the market tab is shown: charts need their width. */
export function showMarket() {
  visible = true;
  load();
}

export function hideMarket() {
  visible = false;
}

async function refetchTrades() {
  // Re-renders through the `award` / `trade` notices when anything new is listed.
  seedTrades(await fetchJson('/api/trades'));
}

async function load() {
  const [index, past, stats, sales] = await Promise.all([
    fetchJson('/api/index'),
    fetchJson('/api/index/history'),
    fetchJson('/api/market'),
    fetchJson('/api/trades'),
  ]);
  seedTrades(sales);
  if (index && typeof index === 'object') {
    if (index.values) Object.assign(market.index, index.values);
    if (index.intraday && typeof index.intraday === 'object') {
      for (const [code, points] of Object.entries(index.intraday)) {
        if (!Array.isArray(points)) continue;
        // Keep live points newer than what the endpoint knew.
        const lastTs = points.at(-1)?.ts ?? 0;
        const live = (market.intraday[code] ?? []).filter((p) => p.ts > lastTs);
        market.intraday[code] = [...points, ...live];
      }
    }
  }
  $('#index-status').dataset.available = index ? 'yes' : 'no';
  history = Array.isArray(past?.rows) ? past.rows : [];
  if (stats && Array.isArray(stats.cells)) {
    marketDay = stats.day ?? null;
    cells = new Map(stats.cells.map((c) => [`${c.product}|${c.grade}`, c]));
    clearance = Array.isArray(stats.clearance) ? stats.clearance : [];
  }
  $('#market-status').dataset.available = stats ? 'yes' : 'no';
  renderTiles();
  renderCharts();
  renderStats();
  renderClearance();
}

// ---- the index --------------------------------------------------------------------------------

function previousClose(code) {
  for (let i = history.length - 1; i >= 0; i--) {
    const row = history[i];
    if (row.day === market.day) continue;
    const value = row.closes?.[code];
    if (value !== undefined) return value;
  }
  return null;
}

function renderTiles() {
  const box = $('[data-testid=index-tiles]');
  fill(box, ...INDICES.map((ix) => {
    const value = market.index[ix.code] ?? null;
    const close = previousClose(ix.code);
    let change = '';
    let direction = 'flat';
    if (value !== null && close !== null) {
      // Index points, not money: compare in hundredths to avoid float noise.
      const now = toFen(String(value));
      const before = toFen(String(close));
      if (now !== null && before !== null && before !== 0) {
        const diff = now - before;
        direction = diff > 0 ? 'up' : diff < 0 ? 'down' : 'flat';
        const pct = ((diff / before) * 100).toFixed(2);
        change = `${diff > 0 ? '+' : ''}${formatMoney(diff)} (${diff > 0 ? '+' : ''}${pct}%)`;
      }
    }
    return h('div', { class: `index-tile ${direction}`, testid: `index-${ix.code}` },
      h('div', { class: 'index-code' }, h('i', { class: 'swatch', dataset: { color: ix.color } }), ix.code),
      h('div', { class: 'index-name' }, ix.en, ' ', h('span', { lang: 'zh' }, ix.zh)),
      h('div', { class: 'index-value', testid: `index-${ix.code}-value` }, value === null ? '—' : formatMoney(String(value))),
      h('div', { class: 'index-change' }, change || (value === null ? 'not published yet · 尚未发布' : 'vs. last close')));
  }));
  for (const swatch of box.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.color;
}

function scheduleCharts() {
  clearTimeout(renderTimer);
  renderTimer = setTimeout(renderCharts, 250);
}

function renderCharts() {
  if (!visible) return;
  const daySeries = INDICES.map((ix) => ({
    code: ix.code,
    label: ix.en,
    color: ix.color,
    points: history
      .map((row, i) => [i, Number(row.closes?.[ix.code])])
      .filter((p) => Number.isFinite(p[1])),
  }));
  const days = history.map((row) => row.day);
  lineChart($('[data-testid=index-chart]'), {
    series: daySeries,
    xLabel: (i) => (days[Math.round(i)] ?? '').slice(5),
    empty: 'No settled days yet — the index closes at the end of the first trading day · 尚无收盘数据',
  });
  const intraday = INDICES.map((ix) => ({
    code: ix.code,
    label: ix.en,
    color: ix.color,
    points: (market.intraday[ix.code] ?? [])
      .map((p) => [p.ts, Number(p.value)])
      .filter((p) => typeof p[0] === 'number' && Number.isFinite(p[1])),
  }));
  lineChart($('[data-testid=intraday-chart]'), {
    series: intraday,
    xLabel: (ts) => clockTime(ts).slice(0, 5),
    empty: 'No trades yet today — intraday values appear as trades occur · 今日暂无成交',
  });
  fill($('#index-legend'), ...INDICES.map((ix) => {
    const item = h('span', { class: 'legend-item' }, h('i', { class: 'swatch' }), `${ix.code} `, h('span', { lang: 'zh' }, ix.zh));
    item.querySelector('.swatch').style.background = ix.color;
    return item;
  }));
}

// ---- statistics and clearance ---------------------------------------------------------------

const STAT_COLUMNS = ['open', 'high', 'low', 'last', 'vwap'];

function statRow(key, c) {
  return h('tr', { testid: `stats-${c.product}-${c.grade}`, dataset: { key } },
    h('th', { scope: 'row' }, productName(c.product)),
    h('td', { class: 'grade-cell' }, c.grade),
    ...STAT_COLUMNS.map((k) => h('td', { class: 'num' }, c[k] == null ? '—' : formatMoney(c[k]))),
    h('td', { class: 'num' }, integer(c.units)),
    h('td', { class: 'num' }, c.turnover == null ? '—' : cny(c.turnover)),
    h('td', { class: 'num' }, integer(c.trades)));
}

function renderStats(changedKey) {
  const body = $('[data-testid=market-stats] tbody');
  const keys = [...cells.keys()].sort();
  setText($('#market-day'), marketDay ?? market.day ?? '');
  if (keys.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 10 }, 'No trades yet today · 今日暂无成交')));
    return;
  }
  fill(body, ...keys.map((k) => statRow(k, cells.get(k))));
  if (changedKey) body.querySelector(`tr[data-key="${CSS.escape(changedKey)}"]`)?.classList.add('changed');
}

function renderClearance() {
  const body = $('[data-testid=clearance] tbody');
  if (clearance.length === 0) {
    fill(body, h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No lots consigned yet · 暂无寄售')));
    return;
  }
  fill(body, ...clearance.map((r) => {
    const rate = r.consigned > 0 ? `${Math.round((100 * r.sold) / r.consigned)}%` : '—';
    return h('tr', { testid: `clearance-${r.product}` },
      h('th', { scope: 'row' }, productName(r.product)),
      h('td', { class: 'num' }, integer(r.consigned)),
      h('td', { class: 'num' }, integer(r.sold)),
      h('td', { class: 'num' }, integer(r.unsold)),
      h('td', { class: 'num' }, rate));
  }));
}

// ---- books and trades ---------------------------------------------------------------------------

function renderBooks() {
  const box = $('[data-testid=books]');
  const symbols = [...market.books.keys()].sort();
  if (symbols.length === 0) {
    fill(box, h('p', { class: 'empty' }, 'No instruments · 暂无品种'));
    return;
  }
  fill(box, ...symbols.map((symbol) => {
    const book = market.books.get(symbol);
    const bids = sortedLevels(book.bids, 'buy').slice(0, BOOK_LEVELS_SHOWN);
    const asks = sortedLevels(book.asks, 'sell').slice(0, BOOK_LEVELS_SHOWN);
    const most = Math.max(1, ...bids.map((l) => l.qty), ...asks.map((l) => l.qty));
    const level = (side) => (l) => {
      const bar = h('i', { class: 'depth-bar' });
      bar.style.width = `${((100 * l.qty) / most).toFixed(1)}%`;
      return h('tr', { class: side }, h('td', { class: 'num lvl-price' }, formatMoney(l.price)), h('td', { class: 'num qty' }, bar, h('span', {}, integer(l.qty))));
    };
    const state = BOOK_STATES[book.state] ?? { en: book.state, zh: '' };
    return h('section', { class: 'book', testid: `book-${symbol}`, dataset: { state: book.state } },
      h('header', {}, h('h3', {}, symbol), h('span', { class: 'book-state', testid: `book-${symbol}-state`, dataset: { state: book.state } }, `${state.en} ${state.zh}`)),
      h('div', { class: 'ladder' },
        h('table', { class: 'side bids' }, h('caption', {}, 'Bids 买'), h('tbody', {}, ...(bids.length ? bids.map(level('bid')) : [h('tr', { class: 'empty' }, h('td', { colspan: 2 }, '—'))]))),
        h('table', { class: 'side asks' }, h('caption', {}, 'Asks 卖'), h('tbody', {}, ...(asks.length ? asks.map(level('ask')) : [h('tr', { class: 'empty' }, h('td', { colspan: 2 }, '—'))])))));
  }));
}

function renderTrades() {
  const list = $('[data-testid=trades]');
  if (market.trades.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No book trades yet · 暂无成交'));
    return;
  }
  // A trade listed from `/api/trades` has no aggressor (clearing does not keep it).
  const sideTag = { buy: 'buy ▲', sell: 'sell ▼' };
  fill(list, ...market.trades.slice(0, 25).map((t) =>
    h('li', { class: `trade aggr-${t.aggressor ?? 'none'}`, testid: `trade-${t.trade_id}` },
      h('span', { class: 'when' }, clockTime(t.ts)),
      h('span', { class: 'sym' }, t.symbol),
      h('span', { class: 'num' }, formatMoney(t.price)),
      h('span', { class: 'num' }, `× ${integer(t.quantity)}`),
      h('span', { class: 'side-tag' }, sideTag[t.aggressor] ?? ''))));
}

/** The clocks' sales of the day (anonymous): `/api/trades`, then the feed. */
function renderTape() {
  const list = $('[data-testid=clock-tape]');
  if (market.clockAwards.length === 0) {
    fill(list, h('li', { class: 'empty' }, 'No clock sales yet today · 今日暂无拍卖成交'));
    return;
  }
  // Test ids: `clock-sale-L-R`, then `-2`, `-3`… for a multi-buy round's further awards.
  const perRound = new Map();
  const rows = market.clockAwards.map((a) => {
    const round = `${a.lot_id}-${a.round}`;
    const n = (perRound.get(round) ?? 0) + 1;
    perRound.set(round, n);
    return { a, testid: n === 1 ? `clock-sale-${round}` : `clock-sale-${round}-${n}` };
  });
  fill(list, ...rows.slice(-25).reverse().map(({ a, testid }) => {
    const lot = market.lots.get(a.lot_id) ?? (a.product ? a : null);
    return h('li', { class: a.voided ? 'voided' : '', testid },
      h('span', { class: 'when' }, clockTime(a.ts)),
      h('span', {}, `Clock ${a.clock}`),
      h('span', {}, lotLink(a.lot_id, lot ? `${productName(lot.product)} ${lot.grade}` : `Lot ${a.lot_id}`, `${testid}-trace`)),
      h('span', { class: 'num' }, `${a.containers} × ¥${a.price}`),
      a.voided ? h('span', { class: 'tag' }, 'voided') : null);
  }));
}
