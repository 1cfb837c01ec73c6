// Cameras and camera groups (SPEC §4.4): paged lists with search, create, edit, delete.

import { del, get, post, put } from './api.js';
import { field, fill, h, input, number, select, values } from './dom.js';
import { t } from './i18n.js';
import { deleteButton, facts, form, go, link, listPage, notice } from './ui.js';

const CAMERAS = '/api/admin/v1/cameras';
const GROUPS = '/api/admin/v1/camera-groups';

const check = (name, on, label) => h('label.check', null, h('input', { type: 'checkbox', name, id: name, checked: !!on }), label);
const allGroups = async () => (await get(GROUPS, { per_page: 500 })).data;

export function cameraList(root, flash) {
  return listPage(root, {
    title: t('cameras'),
    path: CAMERAS,
    flash,
    rowPath: (c) => `/console/cameras/${c.id}`,
    tools: link('/console/cameras/new', t('newCamera')),
    columns: [
      [t('name'), (c) => c.name], [t('id'), (c) => c.id], [t('ip'), (c) => c.ip],
      [t('group'), (c) => c.group?.name], [t('mediaPath'), (c) => c.media_path],
      [t('enabled'), (c) => (c.is_enabled ? t('yes') : t('no'))],
    ],
  });
}

export async function cameraForm(root, id, flash) {
  const url = id ? `${CAMERAS}/${id}` : CAMERAS;
  const [c, groups] = await Promise.all([id ? get(url) : null, allGroups()]);
  const f = form('card', [
    c ? null : h('h1', null, t('newCamera')),
    field(t('name'), input('name', { value: c?.name ?? '' })),
    field(t('ip'), input('ip', { value: c?.ip ?? '' })),
    field(t('group'), select('group_id', [['', t('none')], ...groups.map((g) => [g.id, g.name])], c?.group_id)),
    field(t('mediaPath'), input('media_path', { value: c?.media_path ?? '', placeholder: 'cam{id}' })),
    field(t('archiveDays'), input('archive_storage_days', { value: c?.archive_storage_days ?? '', inputmode: 'numeric' })),
    check('is_enabled', c ? c.is_enabled : true, t('enabled')),
    check('is_sound_enabled', c?.is_sound_enabled, t('sound')),
    h('button', { type: 'submit', id: 'save' }, c ? t('save') : t('create')),
  ], async () => {
    const v = values(f);
    const body = {
      name: v.name,
      ip: v.ip.trim() || null,
      group_id: v.group_id ? Number(v.group_id) : null,
      archive_storage_days: number(v.archive_storage_days),
      is_enabled: v.is_enabled,
      is_sound_enabled: v.is_sound_enabled,
    };
    if (v.media_path.trim() && v.media_path !== c?.media_path) body.media_path = v.media_path.trim();
    // A new camera gets only what was filled in: the rest takes the API's defaults.
    if (!c) for (const k of ['ip', 'group_id', 'archive_storage_days']) if (body[k] === null) delete body[k];
    if (c) {
      await put(url, body);
      await cameraForm(root, id, t('saved'));
    } else {
      await post(url, body);
      await cameraList(root, t('saved'));
      history.replaceState(null, '', '/console/cameras');
    }
  });
  if (!c) return fill(root, f);
  return fill(root,
    h('div.bar', null, h('h1', null, c.name),
      deleteButton(c.name, async () => { await del(url); go('/console/cameras'); })),
    flash ? notice(flash) : null,
    facts([[t('id'), c.id], [t('created'), c.created_at], [t('updated'), c.updated_at]]),
    f);
}

export function groupList(root, flash) {
  return listPage(root, {
    title: t('groups'),
    path: GROUPS,
    flash,
    rowPath: (g) => `/console/groups/${g.id}`,
    tools: link('/console/groups/new', t('newGroup')),
    columns: [
      [t('name'), (g) => g.name], [t('id'), (g) => g.id], [t('parentGroup'), (g) => g.parent_id],
      [t('camerasCount'), (g) => g.cameras_count], [t('created'), (g) => g.created_at],
    ],
  });
}

export async function groupForm(root, id, flash) {
  const url = id ? `${GROUPS}/${id}` : GROUPS;
  const [g, groups] = await Promise.all([id ? get(url) : null, allGroups()]);
  const parents = groups.filter((o) => o.id !== g?.id).map((o) => [o.id, o.name]);
  const f = form('card', [
    g ? null : h('h1', null, t('newGroup')),
    field(t('name'), input('name', { value: g?.name ?? '' })),
    field(t('parentGroup'), select('parent_id', [['', t('none')], ...parents], g?.parent_id)),
    h('button', { type: 'submit', id: 'save' }, g ? t('save') : t('create')),
  ], async () => {
    const v = values(f);
    const body = { name: v.name, parent_id: v.parent_id ? Number(v.parent_id) : null };
    if (g) {
      await put(url, body);
      await groupForm(root, id, t('saved'));
    } else {
      await post(url, body);
      await groupList(root, t('saved'));
      history.replaceState(null, '', '/console/groups');
    }
  });
  if (!g) return fill(root, f);
  return fill(root,
    h('div.bar', null, h('h1', null, g.name),
      deleteButton(g.name, async () => { await del(url); go('/console/groups'); })),
    flash ? notice(flash) : null,
    facts([[t('id'), g.id], [t('camerasCount'), g.cameras_count], [t('created'), g.created_at]]),
    f);
}
