// `node --test gateway/web/tests/`: money is parsed and printed by string manipulation, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toFen, fenToDecimal, formatMoney, cny, parseMoneyInput } from '../money.js';

test('decimal strings become integer fen', () => {
  assert.equal(toFen('3.45'), 345);
  assert.equal(toFen('3.4'), 340);
  assert.equal(toFen('3'), 300);
  assert.equal(toFen('0.07'), 7);
  assert.equal(toFen('-1.05'), -105);
  assert.equal(toFen('-0.00'), 0);
  assert.equal(toFen('19999999.99'), 1999999999);
  assert.equal(toFen('0.1'), 10); // 0.1 + 0.2 would not be 0.3 in floats; fen are exact
});

test('anything but a decimal with at most 2 places is refused', () => {
  for (const bad of ['1.234', 'abc', '', ' ', '1e3', '1.', '.5', '1,000.00', null, undefined, 3.45]) {
    assert.equal(toFen(bad), null, String(bad));
  }
});

test('fen print back as decimals', () => {
  assert.equal(fenToDecimal(345), '3.45');
  assert.equal(fenToDecimal(-5), '-0.05');
  assert.equal(fenToDecimal(0), '0.00');
  assert.equal(fenToDecimal(90071992547409), '900719925474.09');
});

test('money is shown grouped with two places', () => {
  assert.equal(formatMoney('12345.6'), '12,345.60');
  assert.equal(formatMoney('-1234567.89'), '-1,234,567.89');
  assert.equal(formatMoney('999.99'), '999.99');
  assert.equal(cny('20000.00'), '¥20,000.00');
  assert.equal(cny('-3.5'), '-¥3.50');
  assert.equal(cny(null), '—');
});

test('typed amounts become canonical wire strings', () => {
  assert.equal(parseMoneyInput('15000.5'), '15000.50');
  assert.equal(parseMoneyInput(' 2 '), '2.00');
  assert.equal(parseMoneyInput('0'), null);
  assert.equal(parseMoneyInput('0', { allowZero: true }), '0.00');
  assert.equal(parseMoneyInput('-1'), null);
  assert.equal(parseMoneyInput('1.005'), null);
});
