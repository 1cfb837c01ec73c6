// The console's only way to build DOM: elements from a tag, attributes and children, where
// every child that is not already a node becomes a text node. No string of markup is ever
// parsed, so a value from the API can never become an element or a script.

/** h('tag.class', {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs, ...kids) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

/** Appends children: nodes as they are, anything else as text; null and false are skipped. */
export function append(el, kids) {
  for (const k of [kids].flat(Infinity)) {
    if (k == null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function fill(el, ...kids) {
  el.replaceChildren();
  return append(el, kids);
}

/** A labelled form field; `input` is the control (or controls). */
export function field(label, input, hint) {
  return h('label.field', null, h('span', null, label), input, hint ? h('small.muted', null, hint) : null);
}

/** The values of a form's named controls (checkboxes as booleans). */
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

/** A named text input (its id the same name, for labels and tests). */
export const input = (name, attrs) => h('input', { name, id: name, autocomplete: 'off', ...attrs });

/** A whole number as typed, else the text itself (the API names the problem); empty is null. */
export const number = (s) => (s.trim() === '' ? null : /^\d+$/.test(s.trim()) ? Number(s) : s);

/** A <select> of [value, label] pairs. */
export function select(name, options, current) {
  return h('select', { name },
    options.map(([v, label]) => h('option', { value: String(v), selected: String(v) === String(current ?? '') }, label)));
}
