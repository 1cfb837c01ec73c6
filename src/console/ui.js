// The console's shared pieces: navigation without reloads, errors in words, forms that
// report their own outcome, paged lists with search, the delete confirmation, and the
// permission and camera pickers.

import { ApiError, get } from './api.js';
import { fill, h } from './dom.js';
import { t } from './i18n.js';

export function go(path) {
  history.pushState(null, '', path);
  dispatchEvent(new Event('vmsd:route'));
}

export const link = (path, ...kids) =>
  h('a', {
    href: path,
    onclick: (e) => {
      if (e.button || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      go(path);
    },
  }, ...kids);

/** An API failure as the admin should read it. */
export function errorText(e) {
  const wait = e.retryAfter || '?';
  switch (e instanceof ApiError ? e.status : -1) {
    case 422: {
      const errors = Object.entries(e.body.errors || {});
      return [t('invalid'), h('ul', null, errors.flatMap(([f, ms]) => ms.map((m) => h('li', { 'data-field': f }, m))))];
    }
    case 429: return t('tooMany', { s: wait });
    case 419: return t('sessionLimit', { n: e.body.sessions_limit });
    case 402: return t('license402');
    case 403: return t('forbidden');
    case 404: return t('notFound');
    case 413: return t('tooLarge');
    case 500: return t('server');
    case 503: return t('unavailable', { s: wait });
    case 0: return t('network');
    case -1: return String(e);
    default: return t('generic', { status: e.status });
  }
}

export const errorBox = (e) => h('div.error', { role: 'alert', 'data-status': e.status }, errorText(e));
export const notice = (text) => h('div.notice', { role: 'status' }, text);

/** A form whose submit runs `action(form)`; its result (a message) or error shows below. */
export function form(cls, kids, action) {
  const out = h('div.outcome');
  const f = h(`form.${cls}`, {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      const buttons = [...f.querySelectorAll('button')];
      buttons.forEach((b) => { b.disabled = true; });
      fill(out);
      try {
        const msg = await action(f);
        if (msg) fill(out, notice(msg));
      } catch (err) {
        if (err.status !== 401) fill(out, errorBox(err));
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    },
  }, kids, out);
  return f;
}

export function pager(meta, onPage) {
  const p = meta.current_page;
  return h('nav.pager', null,
    h('button', { type: 'button', disabled: p <= 1, onclick: () => onPage(p - 1) }, t('prev')),
    h('span', null, t('pageOf', { p, n: meta.last_page, total: meta.total })),
    h('button', { type: 'button', disabled: p >= meta.last_page, onclick: () => onPage(p + 1) }, t('next')));
}

/** A table of `rows`; `columns` are [label, row => content]; the first cell links to `rowPath`. */
export function table(columns, rows, rowPath) {
  if (!rows.length) return h('p.muted', null, t('none'));
  return h('table', null,
    h('thead', null, h('tr', null, columns.map(([label]) => h('th', null, label)))),
    h('tbody', null, rows.map((row) => h('tr', null, columns.map(([, cell], i) => {
      const v = cell(row);
      return h('td', null, i === 0 && rowPath ? link(rowPath(row), v) : v ?? t('none'));
    })))));
}

function debounced(input, fn) {
  let timer;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(fn, 250);
  });
}

/** A paged list from the API, with a search box when `search`. */
export function listPage(root, { title, path, columns, rowPath, tools, search = true, flash }) {
  const state = { page: 1 };
  const body = h('div', null, t('loading'));
  const input = search ? h('input', { type: 'search', id: 'search', placeholder: t('search'), 'aria-label': t('search') }) : null;
  async function load() {
    try {
      const q = { page: state.page, per_page: 25, search: input ? input.value.trim() : '' };
      const r = await get(path, q);
      fill(body, table(columns, r.data, rowPath), pager(r.meta, (p) => { state.page = p; load(); }));
    } catch (e) {
      if (e.status !== 401) fill(body, errorBox(e));
    }
  }
  if (input) debounced(input, () => { state.page = 1; load(); });
  fill(root, h('div.bar', null, h('h1', null, title), input, tools), flash ? notice(flash) : null, body);
  return load();
}

/** A delete button that asks first, in the page (no blocking dialog). */
export function deleteButton(name, action) {
  const box = h('span.confirm');
  const ask = () => fill(box,
    h('span', null, t('confirmDelete', { name })),
    h('button.danger', {
      type: 'button',
      id: 'confirm-delete',
      onclick: async () => {
        try {
          await action();
        } catch (e) {
          if (e.status !== 401) fill(box, errorBox(e));
        }
      },
    }, t('yesDelete')),
    h('button', { type: 'button', onclick: () => fill(box) }, t('cancel')));
  return h('span.delete', null, h('button.danger', { type: 'button', id: 'delete', onclick: ask }, t('delete')), box);
}

/** Checkboxes for `catalogue`, grouped as the catalogue groups them; `.ids()` reads them. */
export function permissionPicker(catalogue, chosenIds) {
  const chosen = new Set(chosenIds);
  const groups = new Map();
  for (const p of catalogue) {
    if (!groups.has(p.group)) groups.set(p.group, []);
    groups.get(p.group).push(p);
  }
  const el = h('div.perms', null, [...groups].map(([group, ps]) => h('fieldset', null, h('legend', null, group),
    ps.map((p) => h('label.check', { title: p.name },
      h('input', { type: 'checkbox', 'data-perm': p.id, value: p.name, checked: chosen.has(p.id) }), p.display_name)))));
  el.ids = () => [...el.querySelectorAll('input[data-perm]')].filter((i) => i.checked).map((i) => Number(i.dataset.perm));
  return el;
}

/** Every camera, paged and searchable, with checkboxes starting from `attached`;
 * `.diff()` says what to attach and detach. */
export function cameraPicker(attached) {
  const initial = new Set(attached.map((c) => c.id));
  const chosen = new Set(initial);
  const summary = h('p.muted.summary');
  const list = h('div.cams');
  const input = h('input', { type: 'search', placeholder: t('search'), 'aria-label': t('search') });
  const state = { page: 1 };
  const diff = () => ({
    attach: [...chosen].filter((id) => !initial.has(id)),
    detach: [...initial].filter((id) => !chosen.has(id)),
  });
  const sum = () => {
    const d = diff();
    fill(summary, t('selected', { n: chosen.size, a: d.attach.length, d: d.detach.length }));
  };
  const toggle = (id) => (e) => {
    if (e.target.checked) chosen.add(id);
    else chosen.delete(id);
    sum();
  };
  async function load() {
    try {
      const r = await get('/api/admin/v1/cameras', { page: state.page, per_page: 50, search: input.value.trim() });
      fill(list, r.data.length
        ? r.data.map((c) => h('label.check', null,
          h('input', { type: 'checkbox', 'data-camera': c.id, checked: chosen.has(c.id), onchange: toggle(c.id) }),
          c.name, h('small.muted', null, ` #${c.id}`)))
        : h('p.muted', null, t('noCameras')),
      pager(r.meta, (p) => { state.page = p; load(); }));
    } catch (e) {
      if (e.status !== 401) fill(list, errorBox(e));
    }
  }
  debounced(input, () => { state.page = 1; load(); });
  sum();
  load();
  const el = h('fieldset.picker', null, h('legend', null, t('allCameras')), input, summary, list);
  el.diff = diff;
  return el;
}

/** Audit entries, as the log and a user's `events` render them. */
export function auditTable(rows) {
  return table([
    [t('id'), (e) => e.id],
    [t('at'), (e) => e.at],
    [t('actor'), (e) => e.actor_id],
    [t('action'), (e) => e.action],
    [t('target'), (e) => (e.target_type ? `${e.target_type} #${e.target_id ?? ''}` : null)],
    [t('fields'), (e) => (e.fields || []).join(', ')],
  ], rows);
}

/** A definition list of [label, value] pairs. */
export const facts = (pairs) => h('dl.facts', null, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v ?? t('none'))]));

