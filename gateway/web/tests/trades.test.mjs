// `node --test gateway/web/tests/`: the market page's clock sales and trades are seeded from
// `GET /api/trades` and then follow the feed, each sale listed once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyFeed, market, seedTrades } from '../state.js';
import { countOf } from '../words.js';

const DAY = '2026-11-30';
const award = (lot_id, round, ts, containers = 1) =>
  ({ type: 'clock_award', clock: 1, lot_id, round, price: '2.00', containers, remaining: 0, ts });
const trade = (trade_id, ts, aggressor = 'buy') =>
  ({ type: 'trade', symbol: 'ROSE-A', trade_id, price: '2.20', quantity: 5, aggressor, ts });

test('a page opened after the sales lists them, and live events are not listed twice', () => {
  applyFeed({ type: 'snapshot', seq: 1, day: DAY, clocks: [], books: [], index: {} });
  // The feed brings a sale before the answer arrives; the answer has it too.
  applyFeed({ seq: 2, ...award(9, 1, 3_000) });
  applyFeed({ seq: 3, ...trade(12, 3_500, 'sell') });
  const answer = {
    day: DAY,
    trades: [
      { ...award(7, 1, 1_000), product: 'TULIP', grade: 'A2' },
      { ...trade(11, 2_000, null), product: 'ROSE' },
      { ...award(9, 1, 3_000), product: 'ROSE', grade: 'A1' },
      { ...trade(12, 3_500, null), product: 'ROSE' },
    ],
  };
  assert.equal(seedTrades(answer), true);
  assert.deepEqual(market.clockAwards.map((a) => [a.lot_id, a.ts]), [[7, 1_000], [9, 3_000]]);
  assert.deepEqual(market.trades.map((t) => [t.trade_id, t.aggressor]), [[12, 'sell'], [11, null]]);
  // Seeding again (Refresh) and later live events add nothing twice.
  seedTrades(answer);
  applyFeed({ seq: 4, ...award(9, 2, 4_000) });
  applyFeed({ seq: 5, ...trade(13, 4_500) });
  seedTrades({ day: DAY, trades: [...answer.trades, award(9, 2, 4_000), trade(13, 4_500, null)] });
  assert.deepEqual(market.clockAwards.map((a) => `${a.lot_id}-${a.round}`), ['7-1', '9-1', '9-2']);
  assert.deepEqual(market.trades.map((t) => t.trade_id), [13, 12, 11]);
  assert.equal(market.trades[0].aggressor, 'buy', "the feed's copy wins");
});

test('a seeded award voided on the feed is marked, and an answer about another day is ignored', () => {
  applyFeed({ seq: 6, type: 'award_voided', clock: 1, lot_id: 9, round: 2, containers: 1, remaining: 1 });
  assert.equal(market.clockAwards.at(-1).voided, true);
  assert.equal(seedTrades({ day: '2026-11-29', trades: [award(3, 1, 500)] }), false);
  assert.equal(market.clockAwards.length, 3);
  assert.equal(seedTrades(null), false);
});

test('English counts are singular for one', () => {
  assert.equal(countOf(1, 'award'), '1 award');
  assert.equal(countOf(2, 'award'), '2 awards');
  assert.equal(countOf(0, 'container'), '0 containers');
});
