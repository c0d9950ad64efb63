// The market's words as a person reads them: product names, units, states and error codes in
// plain English with the Chinese beside them (design.md, "Words").

/** The starting catalogue (protocol section 4); unknown codes are shown as they are. */
export const PRODUCTS = {
  ROSE: { en: 'Rose', zh: '玫瑰', category: 'cut_flower', unit: 'stem', hue: 350 },
  CARNATION: { en: 'Carnation', zh: '康乃馨', category: 'cut_flower', unit: 'stem', hue: 330 },
  LILY: { en: 'Lily', zh: '百合', category: 'cut_flower', unit: 'stem', hue: 45 },
  CHRYSANTHEMUM: { en: 'Chrysanthemum', zh: '菊花', category: 'cut_flower', unit: 'stem', hue: 52 },
  GERBERA: { en: 'Gerbera', zh: '非洲菊', category: 'cut_flower', unit: 'stem', hue: 20 },
  TULIP: { en: 'Tulip', zh: '郁金香', category: 'cut_flower', unit: 'stem', hue: 0 },
  PHALAENOPSIS: { en: 'Moth orchid', zh: '蝴蝶兰', category: 'potted_plant', unit: 'pot', hue: 290 },
  ANTHURIUM: { en: 'Anthurium', zh: '红掌', category: 'potted_plant', unit: 'pot', hue: 355 },
  EUCALYPTUS: { en: 'Eucalyptus', zh: '尤加利', category: 'foliage', unit: 'bunch', hue: 150 },
};

export const UNITS = {
  stem: { en: 'stem', plural: 'stems', zh: '枝' },
  pot: { en: 'pot', plural: 'pots', zh: '盆' },
  bunch: { en: 'bunch', plural: 'bunches', zh: '扎' },
};

export const INDICES = [
  { code: 'SFCI', en: 'Shanghai Flower Consumption Index', zh: '上海花卉消费指数', color: '#ff5c8a' },
  { code: 'SFCI-CUT', en: 'Cut flowers', zh: '切花', color: '#ffb547' },
  { code: 'SFCI-POT', en: 'Potted plants', zh: '盆栽', color: '#b58cff' },
  { code: 'SFCI-FOL', en: 'Foliage', zh: '叶材', color: '#4fd1a1' },
];

export const CLOCK_STATES = {
  idle: { en: 'Idle', zh: '空闲' },
  pre_roll: { en: 'Next lot', zh: '准备' },
  running: { en: 'Running', zh: '运行' },
  pause: { en: 'Paused', zh: '暂停' },
};

export const BOOK_STATES = {
  closed: { en: 'Closed', zh: '休市' },
  pre_open: { en: 'Pre-open', zh: '集合竞价' },
  open: { en: 'Open', zh: '连续交易' },
};

export const LOT_STATUSES = {
  consigned: 'Consigned 已寄售',
  queued: 'Queued 排队',
  on_clock: 'On clock 拍卖中',
  sold: 'Sold 已售',
  partly_sold: 'Partly sold 部分售出',
  unsold: 'Unsold 流拍',
  withdrawn: 'Withdrawn 撤回',
};

/** How a lot is packed (protocol section 5, `packaging`). */
export const PACKAGING = {
  bucket: { en: 'Bucket', zh: '水桶' },
  box: { en: 'Box', zh: '纸箱' },
  tray: { en: 'Tray', zh: '托盘' },
  cart: { en: 'Cart', zh: '花车' },
};

/** Opening stages (protocol section 5, `maturity` 1–5), as a hall's inspectors name them. */
export const MATURITY = {
  1: { en: 'tight bud', zh: '紧蕾' },
  2: { en: 'showing colour', zh: '露色' },
  3: { en: 'half open', zh: '半开' },
  4: { en: 'open', zh: '初开' },
  5: { en: 'full bloom', zh: '盛开' },
};

/** What happened to a presale offer (the feed's `presale.action`, protocol section 11). */
export const PRESALE_ACTIONS = {
  offered: { en: 'Presale offered', zh: '预售挂出' },
  bought: { en: 'Presale bought', zh: '预售成交' },
  withdrawn: { en: 'Presale withdrawn', zh: '预售撤回' },
  closed: { en: 'Presale closed — on the clock', zh: '预售结束' },
};

/** Error codes (protocol section 2) in plain words; the server's message is shown beside them. */
export const ERRORS = {
  bad_request: { en: 'Bad request', zh: '请求有误' },
  unauthenticated: { en: 'Not logged in or wrong token', zh: '未登录或令牌错误' },
  forbidden: { en: 'Not allowed for this participant', zh: '无权操作' },
  not_found: { en: 'Not found', zh: '未找到' },
  invalid_state: { en: 'Not possible right now', zh: '当前状态不允许' },
  too_late: { en: 'Too late — another buyer won', zh: '太迟了，已被买走' },
  quantity_invalid: { en: 'Invalid quantity', zh: '数量无效' },
  price_invalid: { en: 'Invalid price', zh: '价格无效' },
  credit_limit: { en: 'Not enough credit', zh: '信用额度不足' },
  duplicate: { en: 'Already used', zh: '重复' },
  rate_limited: { en: 'Too many messages — slow down', zh: '操作过于频繁' },
  limit_reached: { en: 'The market holds the most it may of this', zh: '已达市场上限' },
  internal: { en: 'Server fault — nothing was done', zh: '服务器故障' },
  // Raised by the app itself, never by the server.
  disconnected: { en: 'Not connected to the market', zh: '未连接' },
  timeout: { en: 'No answer from the market', zh: '无响应' },
  input: { en: 'Please check the form', zh: '请检查输入' },
};

export function productName(code) {
  const p = PRODUCTS[code];
  return p ? `${p.en} ${p.zh}` : code;
}

export function productUnit(code) {
  return PRODUCTS[code]?.unit ?? 'unit';
}

export function unitWords(unit, count) {
  const u = UNITS[unit];
  if (!u) return unit;
  return count === 1 ? u.en : u.plural;
}

/** `1 award`, `2 awards`: a count and an English noun (Chinese has no plural). */
export function countOf(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

export function packagingName(code) {
  const p = PACKAGING[code];
  return p ? `${p.en} ${p.zh}` : String(code ?? '');
}

export function maturityName(stage) {
  const m = MATURITY[stage];
  return m ? `stage ${stage} ${m.en} ${m.zh}` : String(stage ?? '');
}

export function errorWords(code) {
  return ERRORS[code] ?? { en: code, zh: '' };
}
