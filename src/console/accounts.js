// Accounts: regular users and their sub-users (SPEC §4.2), temporary users (§4.3) and
// administrators (§4.4), each listed with search and paging, created, viewed, edited and
// deleted through the admin API.

import { cameraBatches, del, get, post, put } from './api.js';
import { field, h, fill, input, number, values } from './dom.js';
import { t } from './i18n.js';
import {
  auditTable, cameraPicker, deleteButton, facts, form, go, link, listPage, notice, permissionPicker, table,
} from './ui.js';

const USERS = '/api/admin/v1/users';
const SPECIAL = '/api/admin/v1/special-users';

let catalogue = null;
const permissions = async () => (catalogue ??= await get('/api/admin/v1/permissions'));

const passwordInputs = (label) => [
  field(label, input('password', { type: 'password', autocomplete: 'new-password' })),
  field(t('passwordConfirm'), input('password_confirmation', { type: 'password', autocomplete: 'new-password' })),
];
const kind = (u) => t(`kind_${u.user_type}`);
const camerasOf = (u) => table([[t('id'), (c) => c.id], [t('name'), (c) => c.name]], u.cameras || []);

/** Sends the camera changes beyond the first request, 500 ids per list per request. */
async function restOfCameras(url, batches) {
  for (const b of batches) await put(url, b);
}

export function userList(root) {
  return listPage(root, {
    title: t('users'),
    path: USERS,
    rowPath: (u) => `/console/users/${u.id}`,
    tools: link('/console/users/new', t('newUser')),
    columns: [
      [t('name'), (u) => u.name], [t('login'), (u) => u.login], [t('userType'), kind],
      [t('parent'), (u) => u.parent_id], [t('created'), (u) => u.created_at],
    ],
  });
}

export async function userCreate(root, parentId) {
  const perms = permissionPicker((await permissions()).filter((p) => p.user_type === 'user'), []);
  const cams = cameraPicker([]);
  const f = form('card', [
    h('h1', null, parentId ? t('newSubuser') : t('newUser')),
    parentId ? h('p', null, `${t('parent')}: `, link(`/console/users/${parentId}`, `#${parentId}`)) : null,
    field(t('login'), input('login')),
    field(t('name'), input('name')),
    passwordInputs(t('password')),
    h('label.check', null, h('input', { type: 'checkbox', name: 'can_update_password', checked: true }), t('canUpdatePassword')),
    h('h2', null, t('permissions')), perms, cams,
    h('button', { type: 'submit', id: 'save' }, t('create')),
  ], async () => {
    const v = values(f);
    const body = {
      login: v.login, password: v.password, password_confirmation: v.password_confirmation,
      can_update_password: v.can_update_password, permissions: perms.ids(),
    };
    if (v.name) body.name = v.name;
    if (parentId) body.parent_id = Number(parentId);
    const u = await post(USERS, body);
    await restOfCameras(`${USERS}/${u.id}`, cameraBatches(cams.diff().attach, []));
    go(`/console/users/${u.id}`);
  });
  fill(root, f);
}

export async function userView(root, id, flash) {
  const url = `${USERS}/${id}`;
  const [u, all] = await Promise.all([get(url), permissions()]);
  const perms = permissionPicker(all.filter((p) => p.user_type === 'user'), u.permissions.map((p) => p.id));
  const cams = cameraPicker(u.cameras);
  const f = form('card', [
    h('h2', null, t('permissions')), perms,
    h('h2', null, t('attached')), camerasOf(u), cams,
    h('button', { type: 'submit', id: 'save' }, t('save')),
  ], async () => {
    const d = cams.diff();
    const [first, ...rest] = cameraBatches(d.attach, d.detach);
    await put(url, { permissions: perms.ids(), ...first });
    await restOfCameras(url, rest);
    await userView(root, id, t('saved'));
  });
  fill(root,
    h('div.bar', null, h('h1', null, t('editUser', { name: u.name })),
      deleteButton(u.login, async () => { await del(url); go('/console/users'); })),
    flash ? notice(flash) : null,
    facts([[t('id'), u.id], [t('login'), u.login], [t('userType'), kind(u)], [t('created'), u.created_at]]),
    f,
    u.user_type === 'user' ? [
      h('div.bar', null, h('h2', null, t('subusers')), link(`/console/users/new?parent=${u.id}`, t('newSubuser'))),
      table([[t('name'), (s) => s.name], [t('login'), (s) => s.login], [t('created'), (s) => s.created_at]],
        u.subusers, (s) => `/console/users/${s.id}`),
    ] : null,
    h('h2', null, t('events')), auditTable(u.events || []));
}

export function specialList(root) {
  return listPage(root, {
    title: t('special'),
    path: SPECIAL,
    rowPath: (u) => `/console/special/${u.id}`,
    tools: link('/console/special/new', t('newSpecial')),
    columns: [
      [t('name'), (u) => u.name], [t('login'), (u) => u.login], [t('expiredAt'), (u) => u.expired_at],
      [t('ptz'), (u) => u.ptz_priority], [t('cameras'), (u) => (u.cameras || []).length],
      [t('poolFull'), (u) => (u.is_licence_limit_reached ? t('yes') : t('no'))],
    ],
  });
}


/** Creates (`id` null) or edits a temporary user; an edit sends only what changed. */
export async function specialForm(root, id, flash) {
  const url = id ? `${SPECIAL}/${id}` : SPECIAL;
  const [u, all] = await Promise.all([id ? get(url) : null, permissions()]);
  const had = u ? u.permissions.map((p) => p.id).sort() : [];
  const perms = permissionPicker(all, had);
  const cams = cameraPicker(u ? u.cameras : []);
  const f = form('card', [
    u ? null : h('h1', null, t('newSpecial')),
    field(t('name'), input('name', { value: u ? u.name : '' })),
    field(t('login'), input('login', { value: u ? u.login : '' })),
    passwordInputs(u ? t('newPasswordOptional') : t('password')),
    field(t('expiredAt'), input('expired_at', { value: u?.expired_at ?? '', placeholder: 'YYYY-MM-DD HH:MM:SS' }), t('expiredHint')),
    field(t('ptz'), input('ptz_priority', { value: u?.ptz_priority ?? '', inputmode: 'numeric' }), t('ptzHint')),
    h('h2', null, t('permissions')), perms,
    u ? [h('h2', null, t('attached')), camerasOf(u)] : null,
    cams,
    h('button', { type: 'submit', id: 'save' }, u ? t('save') : t('create')),
  ], async () => {
    const v = values(f);
    const body = {};
    // A new user gets every field given; an edit sends only what differs (null clears).
    const changed = (k, now, before) => { if (u ? now !== before : now !== null) body[k] = now; };
    changed('name', v.name, u?.name);
    changed('login', v.login, u?.login);
    if (!u || v.password) {
      body.password = v.password;
      body.password_confirmation = v.password_confirmation;
    }
    changed('expired_at', v.expired_at.trim() || null, u?.expired_at ?? null);
    changed('ptz_priority', number(v.ptz_priority), u?.ptz_priority ?? null);
    const ids = perms.ids().sort();
    if (!u || ids.join() !== had.join()) body.permissions = ids;
    const d = cams.diff();
    const [first, ...rest] = cameraBatches(d.attach, d.detach);
    if (u) {
      await put(url, { ...body, ...first });
      await restOfCameras(url, rest);
      await specialForm(root, id, t('saved'));
    } else {
      const made = await post(url, { ...body, ...first });
      await restOfCameras(`${SPECIAL}/${made.id}`, rest);
      go(`/console/special/${made.id}`);
    }
  });
  if (!u) return fill(root, f);
  const pools = (u.analytic_license || []).map((l) => `${l.type_pretty}: ${l.used}/${l.all}`).join(' · ');
  return fill(root,
    h('div.bar', null, h('h1', null, t('editUser', { name: u.name })),
      deleteButton(u.login, async () => { await del(url); go('/console/special'); })),
    flash ? notice(flash) : null,
    u.is_licence_limit_reached ? h('div.warn', null, t('limitReached')) : null,
    facts([[t('id'), u.id], [t('created'), u.created_at], [t('updated'), u.updated_at], [t('licenses'), pools]]),
    f);
}

export async function adminList(root, flash) {
  const f = form('card', [
    h('h2', null, t('newAdmin')),
    field(t('login'), input('login')),
    field(t('name'), input('name')),
    passwordInputs(t('password')),
    h('button', { type: 'submit', id: 'save' }, t('create')),
  ], async () => {
    const v = values(f);
    const body = { login: v.login, password: v.password, password_confirmation: v.password_confirmation };
    if (v.name) body.name = v.name;
    await post('/api/admin/v1/admins', body);
    await adminList(root, t('saved'));
  });
  const list = h('div');
  await listPage(list, {
    title: t('admins'),
    path: '/api/admin/v1/admins',
    flash,
    columns: [[t('name'), (u) => u.name], [t('login'), (u) => u.login], [t('created'), (u) => u.created_at]],
  });
  fill(root, list, f);
}
