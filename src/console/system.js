// Licence pools (SPEC §5), the audit log (§4.4) and the administrator's own password (§3).

import { get, put } from './api.js';
import { field, fill, h, values } from './dom.js';
import { t } from './i18n.js';
import { auditTable, errorBox, form, notice, pager } from './ui.js';

export async function licenses(root, flash) {
  const pools = await get('/api/admin/v1/licenses');
  fill(root,
    h('h1', null, t('licenses')),
    flash ? notice(flash) : null,
    h('table', null,
      h('thead', null, h('tr', null, [t('pool'), t('all'), t('used'), t('free'), t('setSize')].map((l) => h('th', null, l)))),
      h('tbody', null, pools.map((p) => {
        const f = form('inline', [
          h('input', { name: 'all', id: `all-${p.type}`, value: String(p.all), inputmode: 'numeric', size: 6, 'aria-label': t('all') }),
          h('button', { type: 'submit', id: `set-${p.type}` }, t('save')),
        ], async () => {
          const v = values(f).all.trim();
          await put(`/api/admin/v1/licenses/${encodeURIComponent(p.type)}`, { all: /^\d+$/.test(v) ? Number(v) : v });
          await licenses(root, t('saved'));
        });
        return h('tr', { 'data-pool': p.type }, h('td', null, p.type_pretty), h('td', null, p.all),
          h('td', null, p.used), h('td', null, p.free), h('td', null, f));
      }))));
}

export function audit(root) {
  const body = h('div', null, t('loading'));
  async function load(page) {
    try {
      const r = await get('/api/admin/v1/audit', { page, per_page: 25 });
      fill(body, auditTable(r.data), pager(r.meta, load));
    } catch (e) {
      if (e.status !== 401) fill(body, errorBox(e));
    }
  }
  fill(root, h('h1', null, t('audit')), body);
  return load(1);
}

export function password(root) {
  const pw = (name, auto) => h('input', { name, id: name, type: 'password', autocomplete: auto });
  const f = form('card', [
    h('h1', null, t('changePassword')),
    field(t('oldPassword'), pw('old_password', 'current-password')),
    field(t('newPassword'), pw('password', 'new-password')),
    field(t('passwordConfirm'), pw('password_confirmation', 'new-password')),
    h('button', { type: 'submit', id: 'save' }, t('save')),
  ], async () => {
    await put('/api/admin/v1/users/self/update-password', values(f));
    f.reset();
    return t('passwordChanged');
  });
  fill(root, f);
}

