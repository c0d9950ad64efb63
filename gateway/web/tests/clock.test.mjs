// `node --test gateway/web/tests/`: the clock price the buyer sees is protocol section 6's formula.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clockPriceFen, applyFeed, market } from '../state.js';

const round = { startFen: 999, stepFen: 1, tickMs: 10, startTs: 1_000_000_000 };

test('price(t) = start − step × floor((t − start_ts) / tick_ms)', () => {
  assert.equal(clockPriceFen(round, round.startTs), 999);
  assert.equal(clockPriceFen(round, round.startTs + 9_999), 999); // 9.999 ms: still the first tick
  assert.equal(clockPriceFen(round, round.startTs + 10_000), 998);
  assert.equal(clockPriceFen(round, round.startTs + 1_000_000), 899); // 1 s = 100 ticks
  assert.equal(clockPriceFen({ ...round, stepFen: 5, tickMs: 100 }, round.startTs + 250_000), 989);
});

test('before the start the price is the start price, and it never goes below zero', () => {
  assert.equal(clockPriceFen(round, round.startTs - 5_000), 999);
  assert.equal(clockPriceFen(round, round.startTs + 60_000_000), 0);
});

test('the feed drives a clock through a lot', () => {
  const lot = { lot_id: 7, grower: 'g1', product: 'ROSE', grade: 'A1', units_per_container: 50, containers: 4, remaining: 4, min_purchase: 1 };
  applyFeed({ type: 'snapshot', seq: 1, day: '2026-11-29', clocks: [{ clock: 1, state: 'idle', lot: null, round: null, start_price: null, step: '0.01', tick_ms: 10, start_ts: null, remaining: null }], books: [], index: {} });
  applyFeed({ type: 'lot_on_clock', seq: 2, clock: 1, lot, start_price: '3.45' });
  applyFeed({ type: 'clock_state', seq: 3, clock: 1, state: 'pre_roll' });
  assert.equal(market.clocks.get(1).startFen, 345);
  applyFeed({ type: 'clock_state', seq: 4, clock: 1, state: 'running' });
  applyFeed({ type: 'clock_started', seq: 5, clock: 1, lot_id: 7, round: 1, start_price: '3.45', step: '0.01', tick_ms: 10, start_ts: 5_000_000, remaining: 4 });
  assert.equal(clockPriceFen(market.clocks.get(1), 5_250_000), 320);
  applyFeed({ type: 'clock_award', seq: 6, clock: 1, lot_id: 7, round: 1, price: '3.20', containers: 3, remaining: 1, ts: 5_250_000 });
  const c = market.clocks.get(1);
  assert.deepEqual([c.remaining, c.result.kind, c.result.priceFen], [1, 'sold', 320]);
  applyFeed({ type: 'award_voided', seq: 7, clock: 1, lot_id: 7, round: 1, containers: 3, remaining: 4 });
  assert.equal(market.clockAwards.at(-1).voided, true);
  applyFeed({ type: 'clock_state', seq: 8, clock: 1, state: 'idle' });
  assert.equal(market.clocks.get(1).lot, null);
});
