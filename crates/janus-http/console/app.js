// The console's shell: the router (`#/…` routes), the header with the
// signed-in user and the node this page talks to, and the login page.
// Each page module exports `render(main, params, signal)`; `signal` aborts
// when the page is left, which ends its watches.

import * as api from './api.js';
import { h, fill, errorBox } from './ui.js';
import * as namespaces from './namespaces.js';
import * as services from './services.js';
import * as service from './service.js';
import * as cluster from './cluster.js';
import * as access from './access.js';

// Matched on the hash as written; each part is decoded after the match, so
// a name holding a `/` (encoded in links) stays one part.
const part = decodeURIComponent;
const routes = [
  [/^\/?$/, () => [namespaces, {}]],
  [/^\/ns\/([^/]+)$/, (m) => [services, { ns: part(m[1]) }]],
  [/^\/ns\/([^/]+)\/svc\/([^/]+)\/([^/]+)$/, (m) => [service, { ns: part(m[1]), group: part(m[2]), service: part(m[3]) }]],
  [/^\/cluster$/, () => [cluster, {}]],
  [/^\/access$/, () => [access, {}]],
  [/^\/login$/, () => [{ render: renderLogin }, {}]],
];

const session = api.session;

let current = null;

function route() {
  const path = location.hash.replace(/^#/, '') || '/';
  const main = document.getElementById('main');
  if (current) current.abort();
  current = new AbortController();
  for (const [pattern, pick] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    const [page, params] = pick(match);
    highlightNav(path);
    fill(main);
    Promise.resolve(page.render(main, params, current.signal)).catch((err) => fill(main, errorBox(err)));
    return;
  }
  fill(main, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/' }, 'Back to the namespaces')));
}

function highlightNav(path) {
  for (const link of document.querySelectorAll('#nav a')) {
    const target = link.getAttribute('href').replace(/^#/, '');
    const active = target === '/' ? path === '/' || path.startsWith('/ns/') : path.startsWith(target);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function refreshSession() {
  try {
    const { body } = await api.get('/v1/auth/whoami');
    session.authEnabled = body.auth_enabled;
    session.user = body.user;
    session.grants = body.grants || [];
  } catch (err) {
    if (err.status !== 401) throw err;
    session.authEnabled = true;
    session.user = null;
    session.grants = [];
  }
  renderWho();
}

function renderWho() {
  const who = document.getElementById('who');
  if (!session.authEnabled) {
    fill(who, h('span', { class: 'muted', title: 'auth.enabled is off on this node' }, 'auth off'));
    return;
  }
  if (!session.user) {
    fill(who, h('a', { href: '#/login' }, 'Sign in'));
    return;
  }
  const signOut = h('button', { type: 'button', class: 'link', onclick: signOutNow }, 'Sign out');
  fill(who, h('span', {}, 'Signed in as ', h('strong', {}, session.user)), ' ', signOut);
}

function signOutNow() {
  api.setToken(null);
  session.user = null;
  renderWho();
  location.hash = '#/login';
}

/** After a login, where to go back to. */
let returnTo = '#/';

function renderLogin(main) {
  const error = h('div', {});
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const tokenInput = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off' });
  const byPassword = h(
    'form',
    { class: 'card', id: 'login-form' },
    h('h2', {}, 'Sign in with a password'),
    h('div', { class: 'row' }, h('label', { for: 'login-user' }, 'User'), user),
    h('div', { class: 'row' }, h('label', { for: 'login-password' }, 'Password'), password),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
  );
  byPassword.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const { body } = await api.post('/v1/auth/login', { username: user.value.trim(), password: password.value });
      await signedIn(body.token);
    } catch (err) {
      fill(error, errorBox(err));
    }
  });
  const byToken = h(
    'form',
    { class: 'card', id: 'token-form' },
    h('h2', {}, 'Or use a token'),
    h('p', { class: 'muted' }, 'A token made with ', h('code', {}, 'janus auth tokens create'), ' or the bootstrap token.'),
    h('div', { class: 'row' }, h('label', { for: 'login-token' }, 'Token'), tokenInput),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Use token')),
  );
  byToken.addEventListener('submit', async (event) => {
    event.preventDefault();
    await signedIn(tokenInput.value.trim()).catch((err) => fill(error, errorBox(err)));
  });
  async function signedIn(value) {
    api.setToken(value);
    await refreshSession();
    if (!session.user) {
      api.setToken(null);
      throw new Error('That token was not accepted.');
    }
    location.hash = returnTo === '#/login' ? '#/' : returnTo;
  }
  fill(
    main,
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Authentication is on for this node: sign in to see and change the registry.'),
    error,
    h('div', { class: 'cards' }, byPassword, byToken),
  );
  user.focus();
}

api.whenUnauthorized(() => {
  if (location.hash === '#/login') return;
  returnTo = location.hash || '#/';
  api.setToken(null);
  session.user = null;
  renderWho();
  location.hash = '#/login';
});

api.onLink((state) => {
  const status = document.getElementById('link');
  if (state === 'ok') fill(status);
  else fill(status, h('span', { class: 'error', role: 'alert' }, `Disconnected: ${state}; retrying`));
});

window.addEventListener('hashchange', () => {
  route();
  // Keyboard and screen-reader users land on the new page's content.
  document.getElementById('main').focus({ preventScroll: true });
});
refreshSession()
  .catch((err) => fill(document.getElementById('who'), errorBox(err)))
  .finally(route);
