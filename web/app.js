// The panel's entry point: the session, the shell (sidebar and page area) and hash routing.
// Pages live in js/pages/; each exports {id, title, mount(page, ctx)}.

import {h, replace, hashPath} from './js/dom.js';
import {ApiError, client, isAbort, loadSession, onUnauthorized, request, setCsrfToken} from './js/api.js';
import {alertBox, busy, field, say, statusBox} from './js/ui.js';
import dashboard from './js/pages/dashboard.js';
import graphs from './js/pages/graphs.js';
import enrol from './js/pages/enrol.js';
import queue from './js/pages/queue.js';
import restart from './js/pages/restart.js';
import audit from './js/pages/audit.js';
import users from './js/pages/users.js';
import accounts from './js/pages/accounts.js';
import plugin from './js/pages/plugin.js';
import notFound from './js/pages/notfound.js';

const ROUTES = {
  'dashboard': dashboard,
  'graphs': graphs,
  'nodes/enrol': enrol,
  'queue': queue,
  'restart': restart,
  'audit': audit,
  'users': users,
  'accounts': accounts,
};

// The sidebar: [group, [[route, data-test, label], ...]].
const NAV = [
  ['Cluster', [['dashboard', 'nav-dashboard', 'Dashboard'], ['nodes/enrol', 'nav-enrol', 'Enrol a node'],
    ['queue', 'nav-queue', 'Command queue'], ['restart', 'nav-restart', 'Rolling restart'], ['graphs', 'nav-graphs', 'Graphs']]],
  ['Hosting', [['accounts', 'nav-accounts', 'Accounts and plans']]],
  ['Administration', [['users', 'nav-users', 'Users'], ['audit', 'nav-audit', 'Audit log']]],
];

// An owner (a panel user bound to one hosting account) sees the hosting pages only; the API
// refuses them everything else anyway.
function isOwner() {
  return Boolean(state.session && state.session.user && state.session.user.kind === 'owner');
}

const SESSION_ENDED = 'Your session ended; sign in again.';
const root = document.getElementById('app');

const state = {
  session: null, // {user: {name}, csrf_token, idle_timeout_seconds}
  panels: [], // [{plugin, id, definition}]
  current: null, // {controller, timers, alive}
  lastActivity: Date.now(),
  ending: false,
};

// ---- routing ----

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const parts = raw.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length === 0) return {key: 'dashboard', page: dashboard, params: {}};
  if (parts[0] === 'plugins' && parts.length === 3) {
    return {key: `plugins/${parts[1]}/${parts[2]}`, page: plugin, params: {plugin: parts[1], panel: parts[2]}};
  }
  const key = parts.join('/');
  return {key, page: ROUTES[key] || notFound, params: {path: key}};
}

function leavePage() {
  const current = state.current;
  if (!current) return;
  current.alive = false;
  current.controller.abort();
  for (const t of current.timers) clearInterval(t);
  for (const fn of current.cleanups) {
    try {
      fn();
    } catch {
      // a page's cleanup must not stop the next page
    }
  }
  state.current = null;
}

function route(focus) {
  if (!state.session) return;
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    history.replaceState(null, '', isOwner() ? '#/accounts' : '#/dashboard');
  }
  leavePage();
  const {key, page, params} = parseHash();
  const main = h('main', {id: 'page', 'data-page': page.id, tabindex: '-1'});
  const old = document.getElementById('page');
  old.replaceWith(main);
  markNav(key);

  const controller = new AbortController();
  const current = {controller, timers: [], cleanups: [], alive: true};
  state.current = current;
  const ctx = {
    params,
    api: client(controller.signal),
    signal: controller.signal,
    session: state.session,
    panels: () => state.panels,
    reloadPanels,
    alive: () => current.alive,
    ready() {
      if (current.alive) main.dataset.ready = '1';
    },
    // setInterval that stops when the page is left, and skips its turns while the tab is hidden.
    every(ms, fn) {
      current.timers.push(setInterval(() => {
        if (current.alive && !document.hidden) fn();
      }, ms));
    },
    onLeave(fn) {
      current.cleanups.push(fn);
    },
    setTitle(title) {
      document.title = `${title} — shoal`;
    },
  };
  ctx.setTitle(page.title || 'shoal');
  try {
    page.mount(main, ctx);
  } catch (e) {
    replace(main, h('h1', null, 'This page failed'), h('div', {class: 'alert', role: 'alert'}, String(e && e.message)));
    main.dataset.ready = '1';
  }
  if (focus) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  }
}

function markNav(key) {
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.route === key) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// ---- the shell ----

function navLink(routeKey, test, label, segments) {
  return h('li', null, h('a', {href: hashPath(segments || routeKey.split('/')), 'data-test': test, 'data-route': routeKey}, label));
}

function renderPluginNav() {
  const list = document.getElementById('nav-plugins');
  if (!list) return;
  const group = list.closest('.nav-group');
  replace(list, state.panels.map((p) => {
    const title = p.definition && typeof p.definition.title === 'string' ? p.definition.title : `${p.plugin} ${p.id}`;
    return navLink(`plugins/${p.plugin}/${p.id}`, `nav-plugin-${p.plugin}-${p.id}`, title, ['plugins', p.plugin, p.id]);
  }));
  group.hidden = state.panels.length === 0;
  const parsed = location.hash ? parseHash() : null;
  if (parsed) markNav(parsed.key);
}

async function reloadPanels() {
  try {
    const body = await request('GET', '/v1/panels');
    state.panels = Array.isArray(body && body.panels) ? body.panels.filter((p) => p && p.plugin && p.id) : [];
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    state.panels = []; // 404: this manager offers no plugin panels
  }
  renderPluginNav();
  return state.panels;
}

function renderShell() {
  const logout = h('button', {type: 'button', id: 'logout', class: 'secondary'}, 'Sign out');
  logout.addEventListener('click', () => busy(logout, signOut, 'Signing out…'));
  const skip = h('button', {type: 'button', class: 'skip-link'}, 'Skip to the page');
  skip.addEventListener('click', () => document.getElementById('page').focus());
  const nav = h('nav', {id: 'nav', 'aria-label': 'Main'},
    (isOwner() ? NAV.filter(([group]) => group === 'Hosting') : NAV).map(([group, links]) => h('div', {class: 'nav-group'},
      h('h2', null, group),
      h('ul', null, links.map(([r, test, label]) => navLink(r, test, label))))),
    h('div', {class: 'nav-group', hidden: true},
      h('h2', null, 'Plugins'),
      h('ul', {id: 'nav-plugins'})));
  replace(root,
    h('div', {class: 'layout'},
      h('aside', {class: 'sidebar'},
        skip,
        h('div', {class: 'brand'}, 'shoal'),
        nav,
        h('div', {class: 'who'},
          h('span', {class: 'who-label'}, 'Signed in as'),
          h('span', {id: 'user-name'}, state.session.user && state.session.user.name ? state.session.user.name : ''),
          logout)),
      h('main', {id: 'page'})));
}

async function enterShell() {
  state.lastActivity = Date.now();
  renderShell();
  try {
    await reloadPanels();
  } catch (e) {
    if (isAbort(e) || (e instanceof ApiError && e.status === 401)) return;
  }
  if (state.session) route(false);
}

// ---- signing in and out ----

function showLogin(notice) {
  leavePage();
  state.session = null;
  setCsrfToken('');
  document.title = 'Sign in — shoal';
  const user = h('input', {id: 'login-user', name: 'user', type: 'text', autocomplete: 'username', required: true,
    autocapitalize: 'none', spellcheck: 'false'});
  const password = h('input', {id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const submit = h('button', {type: 'submit', id: 'login-submit', class: 'primary'}, 'Sign in');
  const error = alertBox({id: 'login-error'});
  const info = statusBox({id: 'login-notice', class: 'notice info'});
  const form = h('form', {id: 'login', class: 'login-form', novalidate: true},
    h('h1', null, 'Sign in to shoal'),
    info, error,
    field('User name', user),
    field('Password', password),
    h('div', {class: 'actions'}, submit));
  say(info, notice);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, '');
    if (!user.value.trim() || !password.value) {
      say(error, !user.value.trim() ? 'Enter your user name.' : 'Enter your password.');
      (!user.value.trim() ? user : password).focus();
      return;
    }
    busy(submit, async () => {
      try {
        const session = await request('POST', '/v1/session', {user: user.value.trim(), password: password.value}, {session: true});
        startSession(session);
      } catch (e) {
        if (e instanceof ApiError && e.status === 429) {
          say(error, e.message);
          lockFor(submit, Number(e.retryAfter));
        } else {
          say(error, e instanceof ApiError ? e.message : String(e));
        }
        password.value = '';
        password.focus();
      }
    }, 'Signing in…');
  });
  replace(root, h('div', {class: 'login-layout'}, h('main', {id: 'page', 'data-page': 'login', 'data-ready': '1'}, form)));
  user.focus();
}

// After "too many attempts": the button stays off for Retry-After seconds.
function lockFor(button, seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return;
  const until = Date.now() + Math.min(seconds, 3600) * 1000;
  const tick = () => {
    if (!button.isConnected) return;
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      button.disabled = false;
      button.textContent = 'Sign in';
      return;
    }
    button.disabled = true;
    button.textContent = `Wait ${left} s`;
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 0);
}

function startSession(session) {
  state.session = session;
  state.ending = false;
  setCsrfToken(session.csrf_token);
  enterShell();
}

async function signOut() {
  try {
    await request('DELETE', '/v1/session', undefined, {session: true});
  } catch {
    // signed out either way
  }
  showLogin('You signed out.');
}

function sessionEnded() {
  if (state.ending || !state.session) return;
  state.ending = true;
  showLogin(SESSION_ENDED);
}

// The panel polls (dashboard, rollouts); polling must not keep an unattended panel signed
// in forever, so after idle_timeout_seconds without a key press or click the page signs out.
function watchIdle() {
  const touch = () => {
    state.lastActivity = Date.now();
  };
  for (const type of ['keydown', 'pointerdown', 'wheel', 'touchstart']) {
    window.addEventListener(type, touch, {passive: true, capture: true});
  }
  setInterval(() => {
    const limit = Number(state.session && state.session.idle_timeout_seconds);
    if (!state.session || !Number.isFinite(limit) || limit <= 0) return;
    if (Date.now() - state.lastActivity > limit * 1000) {
      request('DELETE', '/v1/session', undefined, {session: true}).catch(() => {});
      sessionEnded();
    }
  }, 5000);
}

async function start() {
  onUnauthorized(sessionEnded);
  window.addEventListener('hashchange', () => route(true));
  watchIdle();
  try {
    const session = await loadSession();
    startSession(session);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showLogin('');
    } else {
      showLogin('');
      say(document.getElementById('login-error'), e instanceof ApiError ? e.message : String(e));
    }
  }
}

start();
