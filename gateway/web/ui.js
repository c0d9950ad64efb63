// Small DOM helpers shared by the views: element building (text only, never HTML from the
// wire), the error banner, toasts, and formatting of times and quantities.

import { errorWords } from './words.js';

/**
 * `h('div', {class: 'x', testid: 'y', onclick: fn}, child, 'text', …)`. Strings become text nodes,
 * so nothing that came from the wire is ever parsed as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'text') el.textContent = value;
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Sets text only when it changed (the clock face updates it many times a second). */
export function setText(el, text) {
  const value = String(text);
  if (el && el.textContent !== value) el.textContent = value;
}

/** Engine µs → "14:03:27" in Shanghai time, where the market is. */
export function clockTime(tsUs, withMs = false) {
  if (typeof tsUs !== 'number') return '';
  const date = new Date(Math.floor(tsUs / 1000));
  const text = date.toLocaleTimeString('en-GB', { timeZone: 'Asia/Shanghai', hour12: false });
  return withMs ? `${text}.${String(date.getMilliseconds()).padStart(3, '0')}` : text;
}

export function integer(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : n == null ? '—' : String(n);
}

// ---- errors and notices -------------------------------------------------------------------

const ERROR_SHOW_MS = 12_000;
let bannerTimer = null;
const errorLog = [];

/**
 * Shows an `error` frame (or an app-side one with the same shape) in the banner at the top:
 * the code in plain words, the code itself, and the server's message.
 */
export function showError(frame) {
  const code = frame?.code ?? 'internal';
  const words = errorWords(code);
  const banner = document.getElementById('error-banner');
  if (!banner) return;
  setText(banner.querySelector('[data-testid=error-title]'), words.en);
  setText(banner.querySelector('[data-testid=error-title-zh]'), words.zh);
  setText(banner.querySelector('[data-testid=error-code]'), code);
  const context = frame.request ? ` (${frame.request})` : '';
  setText(banner.querySelector('[data-testid=error-message]'), `${frame.message ?? ''}${context}`);
  banner.dataset.code = code;
  banner.dataset.request = frame.request ?? '';
  banner.hidden = false;
  // Re-trigger the attention animation for a repeated error.
  banner.classList.remove('flash');
  void banner.offsetWidth;
  banner.classList.add('flash');
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => {
    banner.hidden = true;
  }, ERROR_SHOW_MS);
  errorLog.unshift({ at: new Date(), code, message: frame.message ?? '' });
  errorLog.length = Math.min(errorLog.length, 50);
  const count = document.querySelector('[data-testid=error-count]');
  if (count) setText(count, String(errorLog.length));
}

export function hideError() {
  const banner = document.getElementById('error-banner');
  if (banner) banner.hidden = true;
}

/** A request of `type` succeeded: an error left by an earlier one of its kind is now stale. */
export function clearErrorFor(type) {
  const banner = document.getElementById('error-banner');
  if (banner && !banner.hidden && banner.dataset.request === type) banner.hidden = true;
}

/** A short notice that fades by itself ("Lot 12 assigned to clock 2"). */
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div', { class: `toast ${kind}`, role: 'status' }, text);
  box.prepend(item);
  while (box.children.length > 5) box.lastElementChild.remove();
  setTimeout(() => item.classList.add('gone'), 4000);
  setTimeout(() => item.remove(), 4600);
}

/** Runs a request; errors from the server are already in the banner, app-side ones go there too. */
export async function attempt(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error && (error.code === 'disconnected' || error.code === 'timeout' || error.code === 'input')) showError(error);
    else if (!(error && error.type === 'error')) {
      console.error(error);
      showError({ code: 'internal', message: String(error) });
    }
    return null;
  }
}

/** An app-side validation error, shown like a server error. */
export function inputError(message) {
  showError({ code: 'input', message });
  return null;
}

/** Reads a form's named fields as trimmed strings. */
export function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form).entries()) {
    values[key] = typeof value === 'string' ? value.trim() : value;
  }
  return values;
}

/** "12" → 12; "" or junk → null; negative refused. */
export function wholeNumber(text) {
  if (!/^\d{1,9}$/.test(String(text ?? '').trim())) return null;
  return Number(text);
}

/** A scheduler that runs `fn` `ms` after the first call since it last ran. Calls in between join
 *  that run instead of putting it off (as a debounce would), so a steady stream of clock events
 *  cannot starve it. */
export function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}
