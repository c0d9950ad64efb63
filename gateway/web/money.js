// Money on the wire is a decimal string ("3.45", at most 2 places). The app keeps it a string for
// display and, where it must compute (the falling clock price), turns it into integer fen by
// string manipulation. No float ever holds an amount that is shown as money.

const DECIMAL = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

/** "3.45" → 345, "-1.5" → -150, "12" → 1200; null when it is not a decimal with ≤ 2 places. */
export function toFen(text) {
  if (typeof text !== 'string') return null;
  const m = DECIMAL.exec(text.trim());
  if (!m) return null;
  const [, sign, whole, frac = ''] = m;
  const fen = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
  if (!Number.isSafeInteger(fen)) return null;
  return sign && fen !== 0 ? -fen : fen;
}

/** 345 → "3.45", -5 → "-0.05". */
export function fenToDecimal(fen) {
  const abs = Math.abs(fen);
  const cents = abs % 100;
  const yuan = (abs - cents) / 100;
  return `${fen < 0 ? '-' : ''}${yuan}.${String(cents).padStart(2, '0')}`;
}

/** "12345.6" → "12,345.60"; text that is not a decimal is returned as it is. */
export function formatMoney(text) {
  const fen = typeof text === 'number' ? text : toFen(String(text ?? ''));
  if (fen === null) return text == null ? '—' : String(text);
  const plain = fenToDecimal(fen);
  const negative = plain.startsWith('-');
  const [yuan, cents] = (negative ? plain.slice(1) : plain).split('.');
  const grouped = yuan.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '-' : ''}${grouped}.${cents}`;
}

/** "12345.6" → "¥12,345.60". */
export function cny(text) {
  const body = formatMoney(text);
  if (body === '—') return body;
  return body.startsWith('-') ? `-¥${body.slice(1)}` : `¥${body}`;
}

/**
 * What a person typed as a price or amount → the canonical wire string ("3" → "3.00"), or null.
 * Negative amounts are refused; zero is allowed only when `allowZero`.
 */
export function parseMoneyInput(value, { allowZero = false } = {}) {
  const fen = toFen(String(value ?? '').trim());
  if (fen === null || fen < 0 || (fen === 0 && !allowZero)) return null;
  return fenToDecimal(fen);
}
