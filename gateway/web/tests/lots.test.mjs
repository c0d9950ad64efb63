// `node --test gateway/web/tests/`: what the views say about a lot (its master data, protocol
// §5), the catalogue's order and filters (§11), which actions a lot allows, which feed events
// concern a grower's lots, and the clocks' next lots as the feed describes them (§9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  masterParts, provenanceParts, nextLotLine, lotSize, catalogueRows, filterRows, filterChoices,
  canStandingBid, canBuyPresale, canOfferPresale, presaleAfter, concernsGrower,
} from '../lots.js';
import { applyFeed, market } from '../state.js';

const lot = (over = {}) => ({
  lot_id: 1, grower: 'dounan', product: 'ROSE', grade: 'A1', units_per_container: 20, containers: 10,
  remaining: 10, min_purchase: 1, origin: null, photo_url: null, note: null, status: 'queued', day: '2026-12-05',
  variety: null, stem_length_cm: null, maturity: null, packaging: null, base: null, batch: null, harvest_day: null,
  clock: null, position: null, start_price: null, sold: 0, unsold: 0, presale: null, qi: null, ...over,
});

test('master data in words: only what the lot has, maturity and packaging named', () => {
  assert.deepEqual(masterParts(lot()), []);
  assert.deepEqual(masterParts(lot({ variety: 'Carola', stem_length_cm: 60, maturity: 3, packaging: 'bucket' })),
    ['Carola', '60 cm', 'stage 3 half open 半开', 'Bucket 水桶']);
  assert.deepEqual(provenanceParts(lot({ origin: 'Dounan, Yunnan', base: 'D-3', batch: 'B7', harvest_day: '2026-12-04' })),
    ['Dounan, Yunnan', 'base D-3', 'batch B7', 'cut 2026-12-04']);
  assert.equal(lotSize(lot({ units_per_container: 1, product: 'PHALAENOPSIS' })), '10 × 1 pot');
  assert.equal(nextLotLine(lot({ variety: 'Carola', stem_length_cm: 60, start_price: '3.50' })),
    'Rose 玫瑰 A1 · Carola · 60 cm · grower dounan · 10 × 20 stems · from ¥3.50');
});

test('the catalogue in auction order per clock, each row knowing its clock', () => {
  const cat = {
    day: '2026-12-05',
    clocks: [
      { clock: 2, lots: [lot({ lot_id: 5, position: 2 }), lot({ lot_id: 4, position: 1 })] },
      { clock: 1, lots: [lot({ lot_id: 9, clock: 1, position: 1, grower: 'a', product: 'LILY', grade: 'A2' })] },
    ],
  };
  const rows = catalogueRows(cat);
  assert.deepEqual(rows.map((r) => [r.clock, r.position, r.lot_id]), [[1, 1, 9], [2, 1, 4], [2, 2, 5]]);
  assert.deepEqual(filterRows(rows, { clock: '2' }).map((r) => r.lot_id), [4, 5]);
  assert.deepEqual(filterRows(rows, { product: 'LILY', grade: 'A2' }).map((r) => r.lot_id), [9]);
  assert.deepEqual(filterRows(rows, { grower: 'dounan', grade: 'A2' }), []);
  assert.deepEqual(filterRows(rows, {}).length, 3);
  assert.deepEqual(catalogueRows(null), []);
});

test('filter choices: grades best first by the products\' scales, unknown grades last', () => {
  const rows = [lot({ grade: 'B1' }), lot({ grade: 'A1', clock: 2 }), lot({ product: 'LILY', grade: 'X', grower: 'b', clock: 1 })];
  const choices = filterChoices(rows, { ROSE: ['A1', 'A2', 'B1'], LILY: ['A1', 'A2'] });
  assert.deepEqual(choices.grades, ['A1', 'B1', 'X']);
  assert.deepEqual(choices.products, ['LILY', 'ROSE']);
  assert.deepEqual(choices.clocks, [1, 2]);
  assert.deepEqual(choices.growers, ['b', 'dounan']);
});

test('what a lot still allows', () => {
  assert.equal(canStandingBid(lot({ status: 'on_clock' })), true);
  assert.equal(canStandingBid(lot({ status: 'sold' })), false);
  assert.equal(canBuyPresale(lot()), false);
  assert.equal(canBuyPresale(lot({ presale: { price: '3.00', containers: 2 } })), true);
  assert.equal(canBuyPresale(lot({ presale: { price: '3.00', containers: 2 }, status: 'on_clock' })), false);
  assert.equal(canOfferPresale(lot({ status: 'consigned' })), true);
  assert.equal(canOfferPresale(lot({ status: 'withdrawn' })), false);
  assert.deepEqual(presaleAfter({ action: 'bought', price: '3.00', containers_left: 1 }), { price: '3.00', containers: 1 });
  assert.equal(presaleAfter({ action: 'bought', price: '3.00', containers_left: 0 }), null);
  assert.equal(presaleAfter({ action: 'closed', price: '3.00', containers_left: 2 }), null);
});

test('a grower hears the feed events about its own lots only', () => {
  const own = new Set([3]);
  assert.equal(concernsGrower({ type: 'clock_award', lot_id: 3 }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'clock_award', lot_id: 4 }, own, 'g'), false);
  assert.equal(concernsGrower({ type: 'lot_unsold', lot_id: 3 }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'presale', lot_id: 3 }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'lot_on_clock', lot: lot({ lot_id: 8 }), next: [lot({ lot_id: 3 })] }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'supply_line', clock: 1, next: [lot({ lot_id: 7, grower: 'g' })] }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'supply_line', clock: 1, next: [lot({ lot_id: 7 })] }, own, 'g'), false);
  // Its lot withdrawn from clock 2's line is no longer in `next`, but the line is its clock's.
  assert.equal(concernsGrower({ type: 'supply_line', clock: 2, next: [] }, own, 'g', new Set([2])), true);
  assert.equal(concernsGrower({ type: 'catalogue', clocks: [{ clock: 1, lot_ids: [2, 3] }] }, own, 'g'), true);
  assert.equal(concernsGrower({ type: 'book', symbol: 'ROSE-A' }, own, 'g'), false);
});

test('a clock\'s next lots follow the snapshot, lot_on_clock and supply_line; presale events update known lots', () => {
  const told = [];
  market.on('next', (n) => told.push(n));
  applyFeed({ type: 'snapshot', seq: 1, day: '2026-12-05', books: [], index: {},
    clocks: [{ clock: 1, state: 'idle', lot: null, round: null, start_price: null, step: null, tick_ms: null, start_ts: null, remaining: null,
      next: [lot({ lot_id: 21, position: 1 }), lot({ lot_id: 22, position: 2 })] }] });
  assert.deepEqual(market.clocks.get(1).next.map((l) => l.lot_id), [21, 22]);
  applyFeed({ type: 'lot_on_clock', seq: 2, clock: 1, lot: lot({ lot_id: 21 }), start_price: '3.00', next: [lot({ lot_id: 22, position: 2 })] });
  assert.equal(market.clocks.get(1).lot.lot_id, 21);
  assert.deepEqual(market.clocks.get(1).next.map((l) => l.lot_id), [22]);
  applyFeed({ type: 'supply_line', seq: 3, clock: 1, next: [lot({ lot_id: 22 }), lot({ lot_id: 23 })] });
  assert.deepEqual(market.clocks.get(1).next.map((l) => l.lot_id), [22, 23]);
  assert.deepEqual(told, [1, 1, 1]);
  applyFeed({ type: 'presale', seq: 4, lot_id: 23, action: 'offered', price: '4.10', containers_left: 3 });
  assert.deepEqual(market.lots.get(23).presale, { price: '4.10', containers: 3 });
  applyFeed({ type: 'presale', seq: 5, lot_id: 23, action: 'withdrawn', price: '4.10', containers_left: 0 });
  assert.equal(market.lots.get(23).presale, null);
});
