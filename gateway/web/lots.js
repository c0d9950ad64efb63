// What the views say about a lot and how they sort and filter lots: its master data in words
// (protocol section 5), the catalogue's rows and filters (section 11), which actions a lot still
// allows, and which feed events concern a grower's lots. Pure functions over lot objects, no DOM,
// so `node --test gateway/web/tests/` checks them.

import { productName, productUnit, unitWords, packagingName, MATURITY } from './words.js';

/** The statuses of a lot that the clock may still sell (a standing bid can still win). */
const BIDDABLE = new Set(['consigned', 'queued', 'on_clock']);
/** The statuses of a lot before its clock: a presale offer can be made, bought or withdrawn. */
const BEFORE_CLOCK = new Set(['consigned', 'queued']);

/** "10 × 20 stems". */
export function lotSize(lot) {
  const unit = productUnit(lot.product);
  return `${lot.containers} × ${lot.units_per_container} ${unitWords(unit, lot.units_per_container)}`;
}

/** The lot's master data in short words, only what it has: ["Carola", "60 cm", "stage 3 half open 半开", "Bucket 水桶"]. */
export function masterParts(lot) {
  const parts = [];
  if (lot.variety) parts.push(String(lot.variety));
  if (typeof lot.stem_length_cm === 'number') parts.push(`${lot.stem_length_cm} cm`);
  if (typeof lot.maturity === 'number') {
    const m = MATURITY[lot.maturity];
    parts.push(m ? `stage ${lot.maturity} ${m.en} ${m.zh}` : `stage ${lot.maturity}`);
  }
  if (lot.packaging) parts.push(packagingName(lot.packaging));
  return parts;
}

/** Where the lot comes from: origin, production base, harvest batch and day, as far as known. */
export function provenanceParts(lot) {
  const parts = [];
  if (lot.origin) parts.push(String(lot.origin));
  if (lot.base) parts.push(`base ${lot.base}`);
  if (lot.batch) parts.push(`batch ${lot.batch}`);
  if (lot.harvest_day) parts.push(`cut ${lot.harvest_day}`);
  return parts;
}

/** One line for a lot in a list of lots to come: product, grade, master data, grower, size, start. */
export function nextLotLine(lot) {
  const parts = [`${productName(lot.product)} ${lot.grade}`, ...masterParts(lot), `grower ${lot.grower}`, lotSize(lot)];
  if (lot.start_price) parts.push(`from ¥${lot.start_price}`);
  return parts.join(' · ');
}

/** A standing bid can still win on this lot. */
export function canStandingBid(lot) {
  return BIDDABLE.has(lot?.status);
}

/** The lot has an open presale offer a buyer can take now. */
export function canBuyPresale(lot) {
  return Boolean(lot?.presale && lot.presale.containers > 0 && BEFORE_CLOCK.has(lot.status));
}

/** The grower may offer (or replace) a presale on this lot: it has not reached its clock. */
export function canOfferPresale(lot) {
  return BEFORE_CLOCK.has(lot?.status) && lot.remaining > 0;
}

/** The lot's presale after a feed `presale` event (`offered`, `bought` leave what is left open;
 *  `withdrawn`, `closed` or nothing left close it). */
export function presaleAfter(event) {
  if (event.action === 'withdrawn' || event.action === 'closed' || !(event.containers_left > 0)) return null;
  return { price: event.price, containers: event.containers_left };
}

/**
 * The catalogue's lots as rows in auction order (clock, then position), each carrying its clock:
 * `{day, clocks:[{clock, lots:[lot…]}]}` → `[lot…]`. Lots without a position come last on their
 * clock, by lot id.
 */
export function catalogueRows(catalogue) {
  const rows = [];
  for (const entry of catalogue?.clocks ?? []) {
    for (const lot of entry.lots ?? []) rows.push({ ...lot, clock: lot.clock ?? entry.clock });
  }
  const pos = (lot) => (typeof lot.position === 'number' ? lot.position : Number.MAX_SAFE_INTEGER);
  rows.sort((a, b) => (a.clock ?? 0) - (b.clock ?? 0) || pos(a) - pos(b) || a.lot_id - b.lot_id);
  return rows;
}

/** The rows that pass every filter that is set: `{product, grade, clock, grower}` ('' = any). */
export function filterRows(rows, filters = {}) {
  const { product = '', grade = '', clock = '', grower = '' } = filters;
  return rows.filter((lot) =>
    (!product || lot.product === product) &&
    (!grade || lot.grade === grade) &&
    (!clock || String(lot.clock) === String(clock)) &&
    (!grower || lot.grower === grower));
}

/**
 * The values each filter can take among `rows`: products and growers by name, clocks by number,
 * grades best first by the products' scales (`scales`: code → grades), unknown grades last.
 */
export function filterChoices(rows, scales = {}) {
  const products = [...new Set(rows.map((l) => l.product))].sort();
  const growers = [...new Set(rows.map((l) => l.grower))].sort();
  const clocks = [...new Set(rows.map((l) => l.clock).filter((c) => c !== null && c !== undefined))].sort((a, b) => a - b);
  const rank = new Map();
  for (const code of products) (scales[code] ?? []).forEach((g, i) => rank.set(g, Math.min(rank.get(g) ?? i, i)));
  const grades = [...new Set(rows.map((l) => l.grade))]
    .sort((a, b) => (rank.get(a) ?? 1e9) - (rank.get(b) ?? 1e9) || a.localeCompare(b));
  return { products, grades, clocks, growers };
}

/**
 * Whether a feed event concerns one of a grower's lots (`ownIds`: its lot ids; `me`: its id;
 * `ownClocks`: the clocks where its lots wait or are auctioned), so that its lot list is asked for
 * again: a lot of its on the clock, sold, unsold or voided, a presale on one of its lots, or a
 * supply line (or catalogue) where its lots are or were (a lot withdrawn from a supply line is no
 * longer in the line's `next`, but the line is on one of its clocks).
 */
export function concernsGrower(event, ownIds, me, ownClocks = new Set()) {
  const mine = (lot) => Boolean(lot) && (ownIds.has(lot.lot_id) || (me && lot.grower === me));
  switch (event?.type) {
    case 'lot_on_clock':
      return mine(event.lot) || (event.next ?? []).some(mine);
    case 'clock_award':
    case 'award_voided':
    case 'lot_unsold':
    case 'clock_started':
    case 'presale':
      return ownIds.has(event.lot_id);
    case 'supply_line':
      return ownClocks.has(event.clock) || (event.next ?? []).some(mine);
    case 'catalogue':
      return (event.clocks ?? []).some((c) => (c.lot_ids ?? []).some((id) => ownIds.has(id)));
    default:
      return false;
  }
}
