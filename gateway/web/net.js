// The app's two WebSockets and its clock.
//
// - `Session`: the trading session on `/ws` (login first, then requests with a `req_id` whose
//   reply or `error` resolves or rejects a promise; private reports go to listeners).
// - `Feed`: the public feed on `/feed` (a `snapshot`, then events numbered by `seq`; a gap means
//   a missed event, so it reconnects for a fresh snapshot).
// - `serverClock`: the engine's time estimated from `pong {ts}` and event times, so the clock
//   face can draw `price(t)` in engine time.
//
// Both sockets go to the page's own server; `?server=HOST:PORT` points them elsewhere and
// `?api=HOST:PORT` does the same for the JSON endpoints (development only). One exception: when
// that server is a follower of a replicated hall (`/health` `role: "follower"`, protocol §13), it
// refuses commands, so the session goes to the leader `/health` names (`sessionTarget`), and
// asks again after every lost connection, since a failover moves the leader. Reads stay local.

// `location` is absent when the unit tests import this module under node.
const params = new URLSearchParams(globalThis.location?.search ?? '');

export function wsUrl(path) {
  const server = params.get('server');
  if (server) {
    const base = /^wss?:\/\//.test(server) ? server : `ws://${server}`;
    return base.replace(/\/+$/, '') + path;
  }
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;
}

export function apiUrl(path) {
  const api = params.get('api');
  if (!api) return path;
  const base = /^https?:\/\//.test(api) ? api : `http://${api}`;
  return base.replace(/\/+$/, '') + path;
}

/**
 * Where the trading session goes, from what `/health` answered (`health`, null if it could not be
 * read) and the page's own `/ws` URL: `{url, node, leader}`, `node` being the http URL shown to
 * the user and `leader` whether it is another node, the leader of this one. A single node, a
 * leader, or a server whose health is unknown (an older server, or `?server=` during development)
 * takes the session itself; a follower sends it to its leader (`http://h:p` → `ws://h:p/ws`).
 * Null when a follower names no leader: a failover is under way and there is nowhere to trade yet.
 */
export function sessionTarget(health, ownWsUrl) {
  if (health?.role !== 'follower') {
    return { url: ownWsUrl, node: ownWsUrl.replace(/^ws/, 'http').replace(/\/ws$/, ''), leader: false };
  }
  let leader;
  try {
    leader = new URL(health.leader);
  } catch {
    return null; // no leader named (null), or nothing a browser could reach
  }
  if (leader.protocol !== 'http:' && leader.protocol !== 'https:') return null;
  const node = leader.origin + leader.pathname.replace(/\/+$/, '');
  return { url: node.replace(/^http/, 'ws') + '/ws', node, leader: true };
}

/** GET a JSON endpoint; null when it is missing (404), fails or answers something else. */
export async function fetchJson(path) {
  try {
    const response = await fetch(apiUrl(path), { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!response.ok) return null;
    return await response.json();
  } catch {
    return null;
  }
}

/** `GET /health`'s answer, also a 503's (a degraded follower still names its leader); null when
 *  there is none (an unreachable server, or none at all: `?server=` during development). */
async function fetchHealth() {
  try {
    const response = await fetch(apiUrl('/health'), { cache: 'no-store', headers: { accept: 'application/json' } });
    return await response.json();
  } catch {
    return null;
  }
}

/** A tiny listener registry: `on(type, fn)`, `emit(type, value)`; type '*' hears everything. */
class Emitter {
  constructor() {
    this.listeners = new Map();
  }
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }
  emit(type, value) {
    for (const key of [type, '*']) {
      for (const fn of this.listeners.get(key) ?? []) {
        try {
          fn(value, type);
        } catch (error) {
          console.error(`listener for ${type} failed`, error);
        }
      }
    }
  }
}

/**
 * The engine's time, in µs since the Unix epoch. With pongs, the offset comes from the sample with
 * the shortest round trip (the server stamped `ts` about half-way through it). Without (the feed
 * alone), every event time is a lower bound of "now" on the server, so the largest one seen wins.
 */
export const serverClock = {
  offsetUs: null,
  source: 'none',
  pongs: [],
  localUs() {
    return (performance.timeOrigin + performance.now()) * 1000;
  },
  now() {
    return this.localUs() + (this.offsetUs ?? 0);
  },
  fromPong(sentUs, receivedUs, ts) {
    this.pongs.push({ rtt: receivedUs - sentUs, offset: ts - (sentUs + receivedUs) / 2 });
    if (this.pongs.length > 12) this.pongs.shift();
    const best = this.pongs.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offsetUs = best.offset;
    this.source = 'ping';
  },
  fromEvent(ts) {
    if (typeof ts !== 'number' || this.source === 'ping') return;
    const lower = ts - this.localUs();
    if (this.offsetUs === null || lower > this.offsetUs) {
      this.offsetUs = lower;
      this.source = 'events';
    }
  },
};

const REQUEST_TIMEOUT_MS = 10_000;
const PING_EVERY_MS = [500, 1000, 2000, 3000, 5000]; // then every 10 s

/** The trading session on `/ws`. Emits every frame by type, plus 'status', 'login', 'logout'
 *  and 'target' (where it trades, before each connection). */
export class Session extends Emitter {
  constructor() {
    super();
    this.ws = null;
    this.token = null;
    this.info = null; // logged_in {participant, roles, day}
    this.status = 'offline';
    this.nextReqId = 1;
    this.pending = new Map();
    this.retries = 0;
    this.pingTimer = null;
    this.reconnectTimer = null;
    this.target = null; // {url, node, leader}: where the session trades (see `sessionTarget`)
    this.attempts = 0; // bumped by every open and logout: an older open that wakes up gives way
  }

  hasRole(role) {
    return Boolean(this.info?.roles?.includes(role));
  }

  setStatus(status) {
    this.status = status;
    this.emit('status', status);
  }

  /** Logs in with `token`; resolves with `logged_in`, rejects with the `error` frame. */
  login(token) {
    this.logout(true);
    this.token = token;
    return this.open();
  }

  logout(quiet = false) {
    this.attempts++;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pingTimer);
    this.token = null;
    this.info = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000, 'logout');
      this.failPending('disconnected', 'logged out');
    }
    if (!quiet) {
      this.setStatus('offline');
      this.emit('logout', null);
    }
  }

  /** Finds where commands are taken (`sessionTarget`: asked anew on every connection, as a
   *  failover moves the leader), connects there and logs in. */
  async open() {
    const attempt = ++this.attempts;
    const target = sessionTarget(await fetchHealth(), wsUrl('/ws'));
    if (attempt !== this.attempts || !this.token) {
      // Logged out, or logged in again, while `/health` was asked: that call owns the session now.
      throw { type: 'error', code: 'cancelled', message: 'superseded by another login or a logout' };
    }
    if (!target) {
      this.reconnectOrGoOffline();
      throw { type: 'error', code: 'disconnected', message: 'this server follows a leader it cannot name yet (a failover is under way); try again in a few seconds' };
    }
    this.target = target;
    this.emit('target', target);
    return this.connect(target.url);
  }

  connect(url) {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (error) {
        reject({ type: 'error', code: 'disconnected', message: String(error) });
        return;
      }
      this.ws = ws;
      this.setStatus('connecting');
      let settled = false;
      ws.onopen = () => {
        this.request({ type: 'login', token: this.token }).then(
          (reply) => {
            settled = true;
            this.retries = 0;
            this.info = reply;
            this.setStatus('online');
            this.emit('login', reply);
            this.schedulePing(0);
            resolve(reply);
          },
          (error) => {
            settled = true;
            if (this.ws === ws) {
              this.ws = null;
              ws.onclose = null;
              ws.close(1000, 'login refused');
            }
            clearTimeout(this.pingTimer);
            // A refused token will not get better by retrying; anything else might.
            if (error.code === 'unauthenticated' || error.code === 'forbidden') this.token = null;
            this.reconnectOrGoOffline();
            reject(error);
          },
        );
      };
      ws.onmessage = (event) => this.receive(event.data);
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        if (!settled) {
          settled = true;
          reject({ type: 'error', code: 'disconnected', message: `cannot reach ${url} (${event.code})` });
        }
        this.lost(ws, `connection closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`);
      };
    });
  }

  /** The connection `ws` is gone (closed, or silent past a ping's timeout): what waits on it
   *  fails, and a logged-in session reconnects (asking `/health` where to, see `open`). */
  lost(ws, why) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onclose = null;
    ws.close();
    clearTimeout(this.pingTimer);
    this.failPending('disconnected', why);
    this.reconnectOrGoOffline();
  }

  /** After a lost or refused connection: a session that was logged in, with a token still worth
   *  trying, reconnects; anything else is offline. */
  reconnectOrGoOffline() {
    if (this.token && this.info) {
      this.setStatus('reconnecting');
      this.scheduleReconnect();
    } else {
      this.info = null;
      this.setStatus('offline');
    }
  }

  scheduleReconnect() {
    const delay = Math.min(10_000, 500 * 2 ** this.retries++);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (!this.token) return;
      this.open().catch((error) => {
        if (!this.token) {
          this.info = null;
          this.setStatus('offline');
          this.emit('logout', error);
        }
      });
    }, delay);
  }

  schedulePing(count) {
    clearTimeout(this.pingTimer);
    const delay = PING_EVERY_MS[count] ?? 10_000;
    this.pingTimer = setTimeout(() => {
      const sent = serverClock.localUs();
      const ws = this.ws;
      this.request({ type: 'ping' }).then(
        (pong) => serverClock.fromPong(sent, serverClock.localUs(), pong.ts),
        // A socket that stays open but answers nothing is a server that stopped (a paused or
        // frozen leader keeps its TCP connections): as good as closed, so move on.
        (error) => error.code === 'timeout' && this.lost(ws, 'no answer to ping'),
      );
      this.schedulePing(count + 1);
    }, delay);
  }

  failPending(code, message) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject({ type: 'error', code, message, req_id: p.reqId, request: p.msg.type });
    }
    this.pending.clear();
  }

  /** Sends `msg` with a fresh `req_id`; resolves with the reply, rejects with the `error`. */
  request(msg) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject({ type: 'error', code: 'disconnected', message: 'not connected; log in first', request: msg.type });
        return;
      }
      const reqId = this.nextReqId++;
      const timer = setTimeout(() => {
        this.pending.delete(reqId);
        reject({ type: 'error', code: 'timeout', message: `no answer to ${msg.type} in ${REQUEST_TIMEOUT_MS / 1000} s`, request: msg.type });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(reqId, { resolve, reject, msg, timer, reqId });
      this.ws.send(JSON.stringify({ ...msg, req_id: reqId }));
    });
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      console.warn('not JSON from /ws', text);
      return;
    }
    if (frame.ts && frame.type !== 'pong') serverClock.fromEvent(frame.ts);
    const pending = frame.req_id !== undefined ? this.pending.get(frame.req_id) : undefined;
    if (pending) {
      this.pending.delete(frame.req_id);
      clearTimeout(pending.timer);
      if (frame.type === 'error') {
        frame.request = pending.msg.type;
        pending.reject(frame);
      } else {
        pending.resolve(frame);
        this.emit('ok', pending.msg.type);
      }
    }
    if (frame.type !== 'pong') this.emit(frame.type, frame);
  }
}

/** The public feed on `/feed`. Emits 'snapshot', every event type, and 'status'. */
export class Feed extends Emitter {
  constructor() {
    super();
    this.ws = null;
    this.seq = null;
    this.status = 'offline';
    this.retries = 0;
    this.timer = null;
  }

  setStatus(status) {
    this.status = status;
    this.emit('status', status);
  }

  connect() {
    clearTimeout(this.timer);
    let ws;
    try {
      ws = new WebSocket(wsUrl('/feed'));
    } catch (error) {
      console.error(error);
      this.retry();
      return;
    }
    this.ws = ws;
    this.seq = null;
    this.setStatus('connecting');
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setStatus('reconnecting');
      this.retry();
    };
  }

  retry() {
    const delay = Math.min(10_000, 500 * 2 ** this.retries++);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the connection and takes a new snapshot (after a gap in `seq`). */
  resnapshot() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, 'gap');
    }
    this.connect();
  }

  receive(ws, text) {
    if (this.ws !== ws) return;
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      console.warn('not JSON from /feed', text);
      return;
    }
    if (event.type === 'snapshot') {
      for (const c of event.clocks ?? []) if (typeof c.start_ts === 'number') serverClock.fromEvent(c.start_ts);
      this.seq = event.seq;
      this.retries = 0;
      this.setStatus('online');
      this.emit('snapshot', event);
      return;
    }
    if (this.seq === null) return; // nothing before the snapshot
    if (typeof event.seq === 'number') {
      if (event.seq <= this.seq) return; // already seen
      if (event.seq !== this.seq + 1) {
        console.warn(`feed gap: ${this.seq} → ${event.seq}; taking a new snapshot`);
        this.resnapshot();
        return;
      }
      this.seq = event.seq;
    }
    const ts = event.ts ?? event.start_ts;
    if (typeof ts === 'number') serverClock.fromEvent(ts);
    this.emit(event.type, event);
  }
}
