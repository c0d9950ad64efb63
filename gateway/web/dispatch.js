// What the views say about the goods after a sale (protocol section 12): the dispatch statuses in
// their order, a line's next steps, a destination in words, lines grouped by dock and status for
// the cold store's tablet, temperatures against a cold-chain maximum, and a statement's
// correction lines. Pure functions over wire objects, no DOM, so `node --test gateway/web/tests/`
// checks them.

import { toFen } from './money.js';

/** The statuses in the only order a line may take them (a step may be skipped, never undone). */
export const DISPATCH_STATUSES = ['awaiting', 'picked', 'cold_store', 'loaded', 'delivered'];

export const DISPATCH_WORDS = {
  awaiting: { en: 'Awaiting', zh: '待提货' },
  picked: { en: 'Picked', zh: '已拣货' },
  cold_store: { en: 'Cold store', zh: '冷库' },
  loaded: { en: 'Loaded', zh: '已装车' },
  delivered: { en: 'Delivered', zh: '已送达' },
};

export const COMPLAINT_REASONS = {
  quality: { en: 'Quality', zh: '质量' },
  quantity: { en: 'Quantity', zh: '数量' },
  grade: { en: 'Grade', zh: '等级' },
  damaged: { en: 'Damaged', zh: '破损' },
};

export function statusWords(status) {
  const w = DISPATCH_WORDS[status];
  return w ? `${w.en} ${w.zh}` : String(status ?? '');
}

/** The statuses a line may move to from `status`: every later one (skipping is allowed). */
export function laterStatuses(status) {
  const at = DISPATCH_STATUSES.indexOf(status);
  return at < 0 ? [] : DISPATCH_STATUSES.slice(at + 1);
}

/** The next status in the usual order, or null once delivered. */
export function nextStatus(status) {
  return laterStatuses(status)[0] ?? null;
}

/** `pickup:D12` → {kind: 'pickup', place: 'D12'}; `delivery:…` likewise; '' or anything else → none. */
export function parseDestination(destination) {
  const m = /^(pickup|delivery):(.+)$/s.exec(String(destination ?? ''));
  return m ? { kind: m[1], place: m[2] } : { kind: 'none', place: '' };
}

export function destinationWords(destination) {
  const d = parseDestination(destination);
  if (d.kind === 'pickup') return `Pickup at dock ${d.place} 自提`;
  if (d.kind === 'delivery') return `Delivery to ${d.place} 配送`;
  return 'No destination yet 未指定';
}

/**
 * The lines as a cold store works them: one group per dock (`pickup:<dock>`, docks by name), then
 * the deliveries together, then the lines with no destination yet; within a group one bucket per
 * status in the protocol's order (only the statuses that have lines), lines by ref.
 * → `[{key, kind, place, statuses: [{status, lines}]}]`, `key` being `dock-<place>`, `delivery`
 * or `none`.
 */
export function groupByDock(lines) {
  const groups = new Map();
  for (const line of lines) {
    const d = parseDestination(line.destination);
    const key = d.kind === 'pickup' ? `dock-${d.place}` : d.kind;
    if (!groups.has(key)) groups.set(key, { key, kind: d.kind, place: d.kind === 'pickup' ? d.place : '', lines: [] });
    groups.get(key).lines.push(line);
  }
  const rank = { pickup: 0, delivery: 1, none: 2 };
  return [...groups.values()]
    .sort((a, b) => rank[a.kind] - rank[b.kind] || a.place.localeCompare(b.place))
    .map((g) => ({
      key: g.key,
      kind: g.kind,
      place: g.place,
      statuses: DISPATCH_STATUSES
        .map((status) => ({ status, lines: g.lines.filter((l) => l.status === status).sort(byRef) }))
        .filter((s) => s.lines.length > 0),
    }));
}

/** Refs in a stable, human order: kind, then their numbers as numbers. */
export function byRef(a, b) {
  const pa = String(a.ref).split(':');
  const pb = String(b.ref).split(':');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isInteger(nx) && Number.isInteger(ny) && x !== '' && y !== '' ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * What a person typed as a temperature → the wire's decimal string ("7.5" → "7.50", "-2" →
 * "-2.00"), or null. Hundredths of a degree, like money: never a float on the wire.
 */
export function parseTemperature(text) {
  const value = String(text ?? '').trim().replace(/\s*°?C?$/i, '');
  const hundredths = toFen(value);
  if (hundredths === null || hundredths < -5000 || hundredths > 6000) return null;
  const sign = hundredths < 0 ? '-' : '';
  const abs = Math.abs(hundredths);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Whether a reading is above a cold-chain maximum (both decimal strings); false when unknown. */
export function aboveMax(temperature, max) {
  const t = toFen(String(temperature ?? ''));
  const m = toFen(String(max ?? ''));
  return t !== null && m !== null && t > m;
}

/** A line replaced by a newer copy of itself (`dispatch_updated`), others kept, by ref. */
export function mergeLine(lines, line) {
  const at = lines.findIndex((l) => l.ref === line.ref);
  if (at < 0) return [...lines, line].sort(byRef);
  const copy = lines.slice();
  // An older copy (a reply that crossed a live update) never replaces a newer one.
  if ((copy[at].updated_ts ?? 0) > (line.updated_ts ?? 0)) return copy;
  copy[at] = line;
  return copy;
}

/** The lots of a buyer's lines, each once, in the order they first appear (the delivery note's QR codes). */
export function lotsOf(lines) {
  const seen = new Set();
  const out = [];
  for (const l of lines) {
    if (typeof l.lot_id === 'number' && !seen.has(l.lot_id)) {
      seen.add(l.lot_id);
      out.push(l.lot_id);
    }
  }
  return out;
}

/** What a complaint on `ref` counts: units on a book line (it has no containers), else containers. */
export function complaintUnit(ref) {
  return String(ref ?? '').startsWith('book:') ? 'unit' : 'container';
}

/** The most a buyer may complain about on a line: containers, or units for a book line (protocol §12). */
export function complainable(line) {
  return line.containers ?? line.units;
}
