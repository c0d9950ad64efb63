// `node --test gateway/web/tests/`: where the trading session goes on a replicated hall
// (protocol §13): a follower's page trades on the leader its `/health` names; everything else on
// its own server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sessionTarget } from '../net.js';

const OWN = 'ws://127.0.0.1:4002/ws';
const follower = (leader) => ({ status: 'ok', role: 'follower', leader, lag: 0, command_seq: 9 });

test('a single node, a leader, or a server whose health is unknown takes the session itself', () => {
  const own = { url: OWN, node: 'http://127.0.0.1:4002', leader: false };
  assert.deepEqual(sessionTarget({ status: 'ok', role: 'single' }, OWN), own);
  assert.deepEqual(sessionTarget({ status: 'ok', role: 'leader', leader: 'http://127.0.0.1:4002' }, OWN), own);
  assert.deepEqual(sessionTarget(null, OWN), own); // 503, no /health, or an older server
  assert.deepEqual(sessionTarget({ status: 'ok' }, OWN), own);
  assert.equal(sessionTarget(null, 'wss://hall.example/ws').node, 'https://hall.example');
});

test('a follower sends the session to the leader it names', () => {
  assert.deepEqual(sessionTarget(follower('http://127.0.0.1:4001'), OWN),
    { url: 'ws://127.0.0.1:4001/ws', node: 'http://127.0.0.1:4001', leader: true });
  assert.deepEqual(sessionTarget(follower('https://a.hall.example/'), OWN),
    { url: 'wss://a.hall.example/ws', node: 'https://a.hall.example', leader: true });
  // An advertised URL behind a path prefix keeps it.
  assert.equal(sessionTarget(follower('http://10.0.0.1:8080/sh'), OWN).url, 'ws://10.0.0.1:8080/sh/ws');
});

test('a follower that names no usable leader (a failover under way) leaves nowhere to trade', () => {
  assert.equal(sessionTarget(follower(null), OWN), null);
  assert.equal(sessionTarget(follower(undefined), OWN), null);
  assert.equal(sessionTarget(follower('not a url'), OWN), null);
  assert.equal(sessionTarget(follower('nats://127.0.0.1:4222'), OWN), null);
});
