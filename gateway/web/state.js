// The public market as the feed describes it: clocks, books, trades, the index and statistics.
// `applyFeed` follows the feed event by event (protocol section 9) and tells the views what
// changed through `market.on(kind, fn)`: 'clock' (number), 'next' (number: the clock's next lots
// changed), 'book' (symbol), 'trade', 'index', 'stats', 'award', 'presale' (the event),
// 'catalogue' (the event), 'day', 'snapshot', and 'event' (every event, after it was applied).
// `seedTrades` adds the sales made before the page opened.

import { toFen } from './money.js';
import { presaleAfter } from './lots.js';

const TRADES_MAX = 60;
const CLOCK_AWARDS_MAX = 500;
const INTRADAY_MAX = 5000;

class Market {
  constructor() {
    this.day = null;
    this.clocks = new Map();
    this.books = new Map();
    this.trades = [];
    this.index = {};
    this.intraday = {};
    this.stats = new Map();
    this.lots = new Map();
    this.clockAwards = [];
    this.listeners = new Map();
  }

  on(kind, fn) {
    if (!this.listeners.has(kind)) this.listeners.set(kind, new Set());
    this.listeners.get(kind).add(fn);
  }

  tell(kind, value) {
    for (const fn of this.listeners.get(kind) ?? []) {
      try {
        fn(value);
      } catch (error) {
        console.error(`market listener for ${kind} failed`, error);
      }
    }
  }

  /** Remembers a lot object from anywhere (feed, `lots`, `lot_consigned`) for names in lists. */
  rememberLot(lot) {
    if (lot && typeof lot.lot_id === 'number') this.lots.set(lot.lot_id, { ...this.lots.get(lot.lot_id), ...lot });
  }

  clock(number) {
    if (!this.clocks.has(number)) this.clocks.set(number, emptyClock(number));
    return this.clocks.get(number);
  }
}

function emptyClock(number) {
  return {
    clock: number,
    state: 'idle',
    lot: null,
    round: null,
    startFen: null,
    stepFen: 1,
    tickMs: 10,
    startTs: null,
    remaining: null,
    next: [], // the next (up to six) lots of the supply line, public lot objects
    result: null, // {kind: 'sold'|'unsold', priceFen, containers, round, ts}
    changedAt: 0,
  };
}

export const market = new Market();

/** The clock's price in fen at engine time `nowUs`: protocol section 6, in integers. */
export function clockPriceFen(c, nowUs) {
  if (c.startFen === null || c.startTs === null) return c.startFen;
  const tickUs = Math.max(1, c.tickMs) * 1000;
  const ticks = Math.max(0, Math.floor((nowUs - c.startTs) / tickUs));
  return Math.max(0, c.startFen - c.stepFen * ticks);
}

function touch(c) {
  c.changedAt = performance.now();
  market.tell('clock', c.clock);
}

/** The clock's next lots from an event or a snapshot (`next`, protocol section 9). */
function setNext(c, next) {
  c.next = Array.isArray(next) ? next : [];
  for (const lot of c.next) market.rememberLot(lot);
  market.tell('next', c.clock);
}

function bookSide(book, side) {
  return side === 'buy' ? book.bids : book.asks;
}

function emptyBook(state = 'closed') {
  return { state, bids: new Map(), asks: new Map() };
}

const handlers = {
  snapshot(e) {
    market.day = e.day;
    const numbers = new Set();
    for (const s of e.clocks ?? []) {
      numbers.add(s.clock);
      const c = market.clock(s.clock);
      const lotChanged = (c.lot?.lot_id ?? null) !== (s.lot?.lot_id ?? s.lot_id ?? null);
      Object.assign(c, {
        state: s.state,
        lot: s.lot ?? null,
        round: s.round ?? null,
        startFen: toFen(s.start_price ?? null),
        stepFen: toFen(s.step ?? '0.01') ?? 1,
        tickMs: s.tick_ms ?? 10,
        startTs: s.start_ts ?? null,
        remaining: s.remaining ?? s.lot?.remaining ?? null,
      });
      if (lotChanged || s.state === 'running') c.result = null;
      market.rememberLot(s.lot);
      setNext(c, s.next);
    }
    for (const n of [...market.clocks.keys()]) if (!numbers.has(n)) market.clocks.delete(n);
    market.books.clear();
    for (const b of e.books ?? []) {
      const book = emptyBook(b.state);
      for (const [price, qty] of b.bids ?? []) book.bids.set(price, qty);
      for (const [price, qty] of b.asks ?? []) book.asks.set(price, qty);
      market.books.set(b.symbol, book);
    }
    if (e.index && typeof e.index === 'object') Object.assign(market.index, e.index);
    market.tell('snapshot', e);
  },
  lot_on_clock(e) {
    const c = market.clock(e.clock);
    Object.assign(c, {
      lot: e.lot,
      round: null,
      startFen: toFen(e.start_price),
      startTs: null,
      remaining: e.lot?.remaining ?? null,
      result: null,
    });
    market.rememberLot(e.lot);
    if (e.next !== undefined) setNext(c, e.next);
    touch(c);
  },
  supply_line(e) {
    setNext(market.clock(e.clock), e.next);
  },
  presale(e) {
    const lot = market.lots.get(e.lot_id);
    if (lot) lot.presale = presaleAfter(e);
    market.tell('presale', e);
  },
  catalogue(e) {
    market.tell('catalogue', e);
  },
  clock_started(e) {
    const c = market.clock(e.clock);
    Object.assign(c, {
      state: 'running',
      round: e.round,
      startFen: toFen(e.start_price),
      stepFen: toFen(e.step) ?? 1,
      tickMs: e.tick_ms,
      startTs: e.start_ts,
      remaining: e.remaining,
      result: null,
    });
    if (c.lot && c.lot.lot_id !== e.lot_id) c.lot = market.lots.get(e.lot_id) ?? { lot_id: e.lot_id };
    touch(c);
  },
  clock_award(e) {
    const c = market.clock(e.clock);
    c.remaining = e.remaining;
    c.result = { kind: 'sold', priceFen: toFen(e.price), containers: e.containers, round: e.round, ts: e.ts };
    if (c.lot && c.lot.lot_id === e.lot_id) c.lot = { ...c.lot, remaining: e.remaining };
    const lot = market.lots.get(e.lot_id);
    if (lot) lot.remaining = e.remaining;
    market.clockAwards.push({ ...e, voided: false });
    if (market.clockAwards.length > CLOCK_AWARDS_MAX) market.clockAwards.shift();
    touch(c);
    market.tell('award', e);
  },
  award_voided(e) {
    const c = market.clock(e.clock);
    c.remaining = e.remaining;
    if (c.lot && c.lot.lot_id === e.lot_id) c.lot = { ...c.lot, remaining: e.remaining };
    const record = market.clockAwards.findLast(
      (a) => a.clock === e.clock && a.lot_id === e.lot_id && a.round === e.round && !a.voided && a.containers === e.containers,
    ) ?? market.clockAwards.findLast((a) => a.clock === e.clock && a.lot_id === e.lot_id && a.round === e.round && !a.voided);
    if (record) record.voided = true;
    if (c.result && c.result.round === e.round) c.result = { ...c.result, kind: 'voided' };
    touch(c);
    market.tell('award', e);
  },
  lot_unsold(e) {
    const c = market.clock(e.clock);
    c.remaining = e.remaining;
    c.result = { kind: 'unsold', priceFen: null, containers: e.remaining, round: e.round, ts: e.ts };
    touch(c);
  },
  clock_state(e) {
    const c = market.clock(e.clock);
    c.state = e.state;
    if (e.state === 'idle') {
      // As the server's feed view: an idle clock has no lot (a halted lot is back in the line).
      Object.assign(c, { lot: null, round: null, startFen: null, startTs: null, remaining: null });
    }
    touch(c);
  },
  book(e) {
    if (!market.books.has(e.symbol)) market.books.set(e.symbol, emptyBook());
    const levels = bookSide(market.books.get(e.symbol), e.side);
    if (e.quantity === 0) levels.delete(e.price);
    else levels.set(e.price, e.quantity);
    market.tell('book', e.symbol);
  },
  book_state(e) {
    if (!market.books.has(e.symbol)) market.books.set(e.symbol, emptyBook());
    market.books.get(e.symbol).state = e.state;
    market.tell('book', e.symbol);
  },
  trade(e) {
    market.trades.unshift(e);
    market.trades.length = Math.min(market.trades.length, TRADES_MAX);
    market.tell('trade', e);
  },
  stats(e) {
    market.stats.set(`${e.product}|${e.grade}`, e);
    market.tell('stats', e);
  },
  index(e) {
    market.index[e.code] = e.value;
    const series = (market.intraday[e.code] ??= []);
    series.push({ ts: e.ts, value: e.value, final: e.final });
    if (series.length > INTRADAY_MAX) series.shift();
    market.tell('index', e);
  },
  day_settled(e) {
    market.day = e.next_day;
    market.clockAwards = [];
    market.intraday = {};
    market.stats.clear();
    market.tell('day', e);
  },
};

/** Applies one feed message to the market. */
export function applyFeed(event) {
  handlers[event.type]?.(event);
  market.tell('event', event);
}

/** The same clock award whether it came from the feed or from `GET /api/trades`. */
function awardKey(a) {
  return `${a.lot_id}|${a.round}|${a.ts}`;
}

/**
 * Seeds the day's clock sales and book trades from `GET /api/trades` (oldest first, voided awards
 * left out), keeping what the feed brought: a sale already listed (same `trade_id`, or same
 * `lot_id`, `round` and `ts`) is not added again, and the feed's copy wins (it has the aggressor,
 * and a void the answer may predate). Returns false for an answer about another day.
 */
export function seedTrades(answer) {
  if (!answer || !Array.isArray(answer.trades)) return false;
  if (answer.day && market.day && answer.day !== market.day) return false;
  const listed = new Set(market.clockAwards.map(awardKey));
  const awards = answer.trades
    .filter((t) => t.type === 'clock_award' && !listed.has(awardKey(t)))
    .map((t) => ({ ...t, voided: false }));
  if (awards.length > 0) {
    // Stable: live events keep their order among themselves.
    market.clockAwards = [...awards, ...market.clockAwards].sort((a, b) => a.ts - b.ts).slice(-CLOCK_AWARDS_MAX);
    market.tell('award', null);
  }
  const known = new Set(market.trades.map((t) => t.trade_id));
  const trades = answer.trades.filter((t) => t.type === 'trade' && !known.has(t.trade_id));
  if (trades.length > 0) {
    market.trades = [...market.trades, ...trades]
      .sort((a, b) => b.ts - a.ts || b.trade_id - a.trade_id)
      .slice(0, TRADES_MAX);
    market.tell('trade', null);
  }
  return true;
}

/** Book levels best first: bids high → low, asks low → high; prices compared in fen. */
export function sortedLevels(levels, side) {
  const rows = [...levels.entries()].map(([price, qty]) => ({ price, fen: toFen(price) ?? 0, qty }));
  rows.sort((a, b) => (side === 'buy' ? b.fen - a.fen : a.fen - b.fen));
  return rows;
}
