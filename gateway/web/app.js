// Huashi (花市) web app: starts the feed and the session, routes between the views by hash
// (#/buyer, #/catalogue, #/market, #/grower, #/logistics, #/delivery-note?day=…, #/operator) or,
// for a lot's public trace, by path (/lot/{id}, which the server answers with this page), handles
// login and shows every error the server sends.

import { Session, Feed, serverClock, wsUrl } from './net.js';
import { market, applyFeed } from './state.js';
import { initBuyer, setFeedOnline } from './buyer.js';
import { initMarket, showMarket, hideMarket } from './market.js';
import { initGrower } from './grower.js';
import { initCatalogue, showCatalogue, hideCatalogue } from './catalogue.js';
import { initOperator } from './operator.js';
import { initGoods } from './goods.js';
import { initLogistics, showLogistics, hideLogistics } from './logistics.js';
import { initDeliveryNote, showDeliveryNote, hideDeliveryNote } from './delivery.js';
import { showTrace, traceLotFromPath } from './trace.js';
import { $, setText, showError, hideError, clearErrorFor, clockTime, toast } from './ui.js';

const TOKEN_KEY = 'huashi.token';
const VIEWS = ['buyer', 'catalogue', 'market', 'grower', 'logistics', 'delivery-note', 'trace', 'operator'];
/** Views without a tab of their own. */
const UNTABBED = new Set(['delivery-note', 'trace']);

const session = new Session();
const feed = new Feed();

/** The view in the URL: `#/name?query`, else the trace at `/lot/{id}`, else the clocks. */
function currentView() {
  const m = location.hash.match(/^#\/([\w-]+)(?:\?(.*))?$/);
  const params = new URLSearchParams(m?.[2] ?? '');
  if (m && VIEWS.includes(m[1]) && m[1] !== 'trace') return { view: m[1], params };
  const lot = traceLotFromPath(location.pathname);
  if (lot !== null) return { view: 'trace', params, lot };
  return { view: 'buyer', params };
}

function route() {
  const { view, params, lot } = currentView();
  for (const name of VIEWS) {
    const section = document.getElementById(`view-${name}`);
    section.hidden = name !== view;
    if (UNTABBED.has(name)) continue;
    const tab = document.querySelector(`[data-testid=tab-${name}]`);
    tab.setAttribute('aria-current', name === view ? 'page' : 'false');
    tab.classList.toggle('active', name === view);
  }
  document.body.dataset.view = view;
  if (view === 'market') showMarket();
  else hideMarket();
  if (view === 'catalogue') showCatalogue();
  else hideCatalogue();
  if (view === 'logistics') showLogistics();
  else hideLogistics();
  if (view === 'delivery-note') showDeliveryNote(params);
  else hideDeliveryNote();
  if (view === 'trace') showTrace(lot);
}

function defaultView(roles) {
  if (roles.includes('operator')) return 'operator';
  if (roles.includes('buyer')) return 'buyer';
  if (roles.includes('grower')) return 'grower';
  if (roles.includes('logistics')) return 'logistics';
  return 'market';
}

function showLoggedIn(info) {
  $('#login-form').hidden = true;
  $('#whoami').hidden = false;
  setText($('[data-testid=participant]'), info.participant);
  setText($('[data-testid=roles]'), info.roles.join(' · '));
  document.body.dataset.roles = info.roles.join(' ');
  document.body.classList.add('logged-in');
  $('[data-testid=tab-grower]').hidden = !info.roles.includes('grower');
  $('[data-testid=tab-logistics]').hidden = !info.roles.includes('logistics') && !info.roles.includes('operator');
}

function showLoggedOut() {
  $('#login-form').hidden = false;
  $('#whoami').hidden = true;
  document.body.dataset.roles = '';
  document.body.classList.remove('logged-in');
  $('[data-testid=tab-grower]').hidden = true;
  $('[data-testid=tab-logistics]').hidden = true;
}

async function login(token, { remember = true, navigate = true } = {}) {
  const button = $('#login-button');
  button.disabled = true;
  try {
    const info = await session.login(token);
    if (remember) sessionStorage.setItem(TOKEN_KEY, token);
    hideError();
    $('#login-token').value = '';
    // A lot's trace (`/lot/{id}`) stays where it is: it was opened to be read.
    if (navigate && !/^#\/[\w-]+/.test(location.hash) && currentView().view !== 'trace') location.hash = `#/${defaultView(info.roles)}`;
    toast(`Logged in as ${info.participant} — 欢迎`, 'good');
  } catch (error) {
    if (error.code === 'unauthenticated' || error.code === 'forbidden') sessionStorage.removeItem(TOKEN_KEY);
    if (error.code === 'disconnected' || error.code === 'timeout') showError(error);
  } finally {
    button.disabled = false;
  }
}

function connectionBadge(el, status) {
  el.dataset.status = status;
  setText(el.querySelector('.conn-state'), status);
}

/** Where the session trades: named in the top bar when that is not this page's server (a
 *  follower's page trades on the hall's leader), and in the badge's tooltip always. */
function showTradingNode(target) {
  const badge = $('[data-testid=session-status]');
  const label = $('[data-testid=session-node]');
  badge.title = `Trading session (/ws) on ${target.node}${target.leader ? ', the leader of this server' : ''}`;
  label.dataset.node = target.node;
  label.hidden = !target.leader;
  setText(label, target.leader ? `on leader ${target.node.replace(/^https?:\/\//, '')}` : '');
}

function start() {
  $('#login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('#login-token').value.trim();
    if (!token) {
      showError({ code: 'input', message: 'Type your token to log in' });
      return;
    }
    login(token);
  });
  $('#logout-button').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    session.logout();
  });
  $('#error-dismiss').addEventListener('click', hideError);

  session.on('login', showLoggedIn);
  session.on('logout', showLoggedOut);
  session.on('status', (status) => connectionBadge($('[data-testid=session-status]'), status));
  session.on('target', showTradingNode);
  session.on('error', showError);
  session.on('ok', (type) => clearErrorFor(type === 'ping' ? null : type));
  session.on('participant_status', (m) => {
    if (session.info && m.participant === session.info.participant && !m.active) {
      showError({ code: 'forbidden', message: 'your participant has been suspended by the operator' });
    }
  });

  feed.on('status', (status) => {
    connectionBadge($('[data-testid=feed-status]'), status);
    setFeedOnline(status === 'online');
  });
  feed.on('*', (event, type) => {
    if (type === 'status') return;
    applyFeed(event);
    if (type === 'snapshot' || type === 'day_settled') setText($('[data-testid=market-day]'), market.day ?? '');
    if (type === 'day_settled') toast(`Day ${event.day} settled; the market moves to ${event.next_day} — 日终结算完成`);
  });

  initBuyer(session);
  initMarket();
  initGrower(session);
  initCatalogue(session);
  initOperator(session);
  initGoods(session);
  initLogistics(session);
  initDeliveryNote(session);

  window.addEventListener('hashchange', route);
  route();
  feed.connect();

  setInterval(() => {
    setText($('[data-testid=server-time]'), serverClock.offsetUs === null ? '--:--:--' : clockTime(serverClock.now()));
    $('[data-testid=server-time]').title = `engine time, estimated from ${serverClock.source}`;
  }, 250);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) login(saved, { navigate: false });
  $('#server-url').textContent = wsUrl('/ws').replace(/\/ws$/, '');
  document.body.classList.add('ready');
}

// Exposed for browser tests and for curious operators: read-only views of the live state.
window.huashi = { session, feed, market, serverClock };

start();
