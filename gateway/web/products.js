// The market's products and their grade scales (protocol section 4), from `GET /api/products`
// (the same as `get_products`), asked once per page and again on demand. Until it answers, or on
// a server without it, the starting catalogue of `words.js` with the default scale stands in.

import { fetchJson } from './net.js';
import { PRODUCTS } from './words.js';

export const DEFAULT_GRADES = ['A1', 'A2', 'B1'];

let list = Object.entries(PRODUCTS).map(([code, p]) => ({ code, name: p.en, category: p.category, unit: p.unit, grades: DEFAULT_GRADES }));
let loaded = null;
const listeners = new Set();

/** The products, in the server's order: `[{code, name, category, unit, grades, max_temperature_c}]`. */
export function products() {
  return list;
}

/** A product's grade scale, best first. */
export function gradesOf(code) {
  const grades = list.find((p) => p.code === code)?.grades;
  return Array.isArray(grades) && grades.length ? grades : DEFAULT_GRADES;
}

/** code → grades, for sorting grades by their place on a scale. */
export function scales() {
  return Object.fromEntries(list.map((p) => [p.code, gradesOf(p.code)]));
}

/** Calls `fn()` whenever the list changes. */
export function onProducts(fn) {
  listeners.add(fn);
}

/** Asks the server (once, unless `again`); resolves when the list is what it said. */
export function loadProducts(again = false) {
  if (loaded && !again) return loaded;
  loaded = fetchJson('/api/products').then((answer) => {
    if (Array.isArray(answer?.products) && answer.products.length) {
      list = answer.products.filter((p) => p && typeof p.code === 'string');
      for (const fn of listeners) fn();
    }
    return list;
  });
  return loaded;
}
