// `node --test gateway/web/tests/`: what the views say about the goods after a sale (protocol
// §12): statuses in order, lines grouped by dock and status, temperatures on the wire and
// against a maximum, live updates merged by ref, the lots of a delivery note.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  laterStatuses, nextStatus, parseDestination, groupByDock, byRef, parseTemperature, aboveMax, mergeLine, lotsOf, complainable,
} from '../dispatch.js';
import { traceLotFromPath } from '../trace.js';

const line = (ref, over = {}) => ({ ref, lot_id: Number(ref.split(':')[1]), containers: 2, units: 40, destination: '', status: 'awaiting', updated_ts: 1, ...over });

test('a status only moves on, and a step may be skipped', () => {
  assert.deepEqual(laterStatuses('awaiting'), ['picked', 'cold_store', 'loaded', 'delivered']);
  assert.deepEqual(laterStatuses('loaded'), ['delivered']);
  assert.deepEqual(laterStatuses('delivered'), []);
  assert.equal(nextStatus('picked'), 'cold_store');
  assert.equal(nextStatus('delivered'), null);
});

test('destinations: a dock, an address, or none yet', () => {
  assert.deepEqual(parseDestination('pickup:D12'), { kind: 'pickup', place: 'D12' });
  assert.deepEqual(parseDestination('delivery:88 Caoan Rd: gate 2'), { kind: 'delivery', place: '88 Caoan Rd: gate 2' });
  assert.deepEqual(parseDestination(''), { kind: 'none', place: '' });
});

test('lines by dock (docks by name), then deliveries, then none; by status in order within', () => {
  const groups = groupByDock([
    line('clock:10:1:1', { destination: 'pickup:D2', status: 'picked' }),
    line('clock:2:1:1', { destination: 'pickup:D2', status: 'picked' }),
    line('clock:3:1:1', { destination: 'pickup:D2', status: 'awaiting' }),
    line('book:7', { destination: 'delivery:Caoan Rd', lot_id: null }),
    line('clock:4:1:1'),
    line('presale:5:1', { destination: 'pickup:D1', status: 'delivered' }),
  ]);
  assert.deepEqual(groups.map((g) => g.key), ['dock-D1', 'dock-D2', 'delivery', 'none']);
  const d2 = groups[1];
  assert.deepEqual(d2.statuses.map((s) => s.status), ['awaiting', 'picked']);
  assert.deepEqual(d2.statuses[1].lines.map((l) => l.ref), ['clock:2:1:1', 'clock:10:1:1'], 'refs compare by their numbers');
});

test('refs sort by kind and then numerically', () => {
  const refs = ['clock:10:1:1', 'clock:9:2:1', 'clock:9:1:2', 'book:3', 'presale:1:1'].map((ref) => ({ ref }));
  assert.deepEqual(refs.sort(byRef).map((r) => r.ref), ['book:3', 'clock:9:1:2', 'clock:9:2:1', 'clock:10:1:1', 'presale:1:1']);
});

test('temperatures as the wire has them, hundredths, never floats', () => {
  assert.equal(parseTemperature('9.5'), '9.50');
  assert.equal(parseTemperature(' -2 °C'), '-2.00');
  assert.equal(parseTemperature('0.05'), '0.05');
  assert.equal(parseTemperature('60.01'), null);
  assert.equal(parseTemperature('7.123'), null);
  assert.equal(parseTemperature('warm'), null);
  assert.equal(aboveMax('8.01', '8.00'), true);
  assert.equal(aboveMax('8.00', '8.00'), false);
  assert.equal(aboveMax(null, '8.00'), false);
});

test('a live update replaces its line, an older copy never a newer one', () => {
  const lines = [line('clock:1:1:1'), line('clock:2:1:1')];
  const moved = mergeLine(lines, line('clock:2:1:1', { status: 'picked', updated_ts: 5 }));
  assert.equal(moved[1].status, 'picked');
  assert.equal(mergeLine(moved, line('clock:2:1:1', { status: 'awaiting', updated_ts: 3 }))[1].status, 'picked');
  assert.deepEqual(mergeLine(lines, line('book:1', { lot_id: null })).map((l) => l.ref), ['book:1', 'clock:1:1:1', 'clock:2:1:1']);
});

test('a delivery note has one QR code per lot; a complaint counts containers, or units on a book line', () => {
  assert.deepEqual(lotsOf([line('clock:3:1:1'), line('clock:3:1:2'), line('book:4', { lot_id: null }), line('presale:1:1')]), [3, 1]);
  assert.equal(complainable(line('clock:3:1:1')), 2);
  assert.equal(complainable(line('book:4', { containers: null, units: 15 })), 15);
});

test('the trace page is at /lot/{id}', () => {
  assert.equal(traceLotFromPath('/lot/42'), 42);
  assert.equal(traceLotFromPath('/lot/42/'), 42);
  assert.equal(traceLotFromPath('/lot/x'), null);
  assert.equal(traceLotFromPath('/'), null);
});
