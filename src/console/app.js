// The console's entry: the language, the header, the login form (with the 419 session
// choice), and the routes from `/console/...` paths to views. Views fetch what they show;
// a 401 anywhere forgets the token and comes back here to the login form.

import { ApiError, get, onUnauthenticated, post, session } from './api.js';
import { field, fill, h, select, values } from './dom.js';
import { choose, language, languages, setup, t } from './i18n.js';
import { errorBox, form, link } from './ui.js';
import * as accounts from './accounts.js';
import * as cameras from './cameras.js';
import * as system from './system.js';

const top = document.getElementById('top');
const main = document.getElementById('main');
let me = null;

const NAV = [
  ['users', '/console/users'], ['special', '/console/special'], ['admins', '/console/admins'],
  ['cameras', '/console/cameras'], ['groups', '/console/groups'], ['licenses', '/console/licenses'],
  ['audit', '/console/audit'], ['password', '/console/password'],
];

const ROUTES = [
  [/^\/console\/users\/new$/, (q) => accounts.userCreate(main, q.get('parent'))],
  [/^\/console\/users\/(\d+)$/, (q, id) => accounts.userView(main, id)],
  [/^\/console\/users$/, () => accounts.userList(main)],
  [/^\/console\/special\/new$/, () => accounts.specialForm(main, null)],
  [/^\/console\/special\/(\d+)$/, (q, id) => accounts.specialForm(main, id)],
  [/^\/console\/special$/, () => accounts.specialList(main)],
  [/^\/console\/admins$/, () => accounts.adminList(main)],
  [/^\/console\/cameras\/new$/, () => cameras.cameraForm(main, null)],
  [/^\/console\/cameras\/(\d+)$/, (q, id) => cameras.cameraForm(main, id)],
  [/^\/console\/cameras$/, () => cameras.cameraList(main)],
  [/^\/console\/groups\/new$/, () => cameras.groupForm(main, null)],
  [/^\/console\/groups\/(\d+)$/, (q, id) => cameras.groupForm(main, id)],
  [/^\/console\/groups$/, () => cameras.groupList(main)],
  [/^\/console\/licenses$/, () => system.licenses(main)],
  [/^\/console\/audit$/, () => system.audit(main)],
  [/^\/console\/password$/, () => system.password(main)],
];

function languageSwitch() {
  const s = select('lang', languages(), language());
  s.id = 'lang';
  s.setAttribute('aria-label', t('language'));
  s.addEventListener('change', () => {
    choose(s.value);
    document.title = t('title');
    render();
  });
  return s;
}

function header() {
  const here = location.pathname;
  fill(top,
    h('strong.brand', null, 'vmsd'),
    h('nav', null, NAV.map(([key, path]) => {
      const a = link(path, t(key));
      if (here === path || here.startsWith(`${path}/`)) a.setAttribute('aria-current', 'page');
      return a;
    })),
    h('span.who', { id: 'who' }, me ? t('signedInAs', { name: me.login }) : null),
    languageSwitch(),
    h('button', { type: 'button', id: 'logout', onclick: logout }, t('logout')));
}

async function logout() {
  try {
    await post('/api/admin/v1/auth/logout');
  } catch {
    // The token may already be gone; forgetting it is what matters.
  }
  session.forget();
  me = null;
  history.pushState(null, '', '/console/login');
  loginView();
}

function loginView() {
  me = null;
  document.title = t('title');
  fill(top, h('strong.brand', null, 'vmsd'), languageSwitch());
  const sessions = h('div.sessions');
  const signIn = async (v, sessionId) => {
    const body = { login: v.login, password: v.password };
    if (sessionId) body.session_id = sessionId;
    try {
      const r = await post('/api/admin/v1/auth/token', body);
      session.save(r.access_token);
      me = r.user;
      fill(sessions);
      if (!location.pathname.startsWith('/console/') || location.pathname === '/console/login') {
        history.replaceState(null, '', '/console/users');
      }
      render();
    } catch (e) {
      if (e.status !== 419) throw e;
      // The session limit: offer each open session to end, then log in again.
      fill(sessions, errorBox(e), h('ul', null, (e.body.sessions || []).map((s) => h('li', null,
        t('sessionLine', { client: s.client || '?', ip: s.ip || '?', last: s.last ? new Date(s.last * 1000).toISOString() : '?' }), ' ',
        h('button', {
          type: 'button',
          onclick: () => signIn(v, s.id).catch((err) => fill(sessions, errorBox(err))),
        }, t('endSession'))))));
    }
  };
  const f = form('card.login', [
    h('h1', null, t('signInTitle')),
    field(t('login'), h('input', { name: 'login', id: 'login', autocomplete: 'username' })),
    field(t('password'), h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password' })),
    h('button', { type: 'submit', id: 'sign-in' }, t('signIn')),
  ], () => signIn(values(f)));
  fill(main, f, sessions);
}

async function render() {
  document.title = t('title');
  if (!session.token()) return loginView();
  if (!me) {
    try {
      me = await get('/api/v1/users/self');
    } catch (e) {
      if (e.status !== 401) fill(main, errorBox(e));
      return undefined;
    }
  }
  let path = location.pathname.replace(/\/+$/, '');
  if (!ROUTES.some(([re]) => re.test(path))) {
    path = '/console/users';
    history.replaceState(null, '', path);
  }
  header();
  const q = new URLSearchParams(location.search);
  for (const [re, view] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    fill(main, h('p.muted', null, t('loading')));
    try {
      await view(q, ...m.slice(1));
    } catch (e) {
      if (e.status !== 401) fill(main, errorBox(e instanceof ApiError ? e : new ApiError(-1, { message: String(e) })));
    }
    break;
  }
  return undefined;
}

onUnauthenticated(loginView);
addEventListener('popstate', render);
addEventListener('vmsd:route', render);
get('/api/v1/static/basic')
  .then((b) => setup(b.available_locales), () => setup(['en']))
  .then(render);
