// DOM helpers shared by the pages: elements built from data (never from
// HTML strings, so nothing a client registered can run here), dialogs that
// ask before anything is destroyed, and messages that say what happened.

/** `h('a', { href: '#/' }, 'text', child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The mode of a namespace, prominent. */
export function modeBadge(mode) {
  const title =
    mode === 'cp'
      ? 'CP: persistent instances on Raft, checked by the server; a minority refuses writes'
      : 'AP: ephemeral instances kept alive by heartbeats or connections; both sides of a partition serve';
  return h('span', { class: `badge mode-${mode}`, title }, mode.toUpperCase());
}

export function flag(on, yes, no) {
  return h('span', { class: on ? 'flag on' : 'flag off' }, on ? yes : no);
}

/** A short message at the bottom of the page. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toast');
  const item = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 4000);
}

/** An error shown in place, in words. */
export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

/** Runs an action, saying what came of it. */
export async function act(what, action) {
  try {
    await action();
    toast(what, 'ok');
    return true;
  } catch (err) {
    toast(err.message || String(err), 'error');
    return false;
  }
}

/** Asks before a destructive action; resolves to true to go ahead. */
export function confirmDialog(question, confirmLabel = 'Delete') {
  return formDialog(question, [], confirmLabel, true).then((values) => values !== null);
}

/**
 * A modal form: `fields` are `{ name, label, type, value, options, help,
 * required }`; resolves to the values by name, or null when cancelled.
 */
export function formDialog(title, fields, submitLabel = 'Save', danger = false) {
  const dialog = document.getElementById('dialog');
  return new Promise((resolve) => {
    const inputs = {};
    const rows = fields.map((field) => {
      const id = `field-${field.name}`;
      let input;
      if (field.type === 'select') {
        input = h(
          'select',
          { id, name: field.name },
          field.options.map(([value, label]) => h('option', { value, selected: value === field.value }, label)),
        );
      } else if (field.type === 'checkbox') {
        input = h('input', { id, name: field.name, type: 'checkbox', checked: Boolean(field.value) });
      } else if (field.type === 'textarea') {
        input = h('textarea', { id, name: field.name, rows: 4 }, field.value || '');
      } else {
        input = h('input', {
          id,
          name: field.name,
          type: field.type || 'text',
          value: field.value ?? '',
          required: field.required,
          autocomplete: field.autocomplete || 'off',
          step: field.step,
          min: field.min,
          max: field.max,
        });
      }
      inputs[field.name] = input;
      return h(
        'div',
        { class: `row ${field.type === 'checkbox' ? 'check' : ''}` },
        h('label', { for: id }, field.label),
        input,
        field.help ? h('small', {}, field.help) : null,
      );
    });
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => close(null) }, 'Cancel');
    const submit = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submitLabel);
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', {}, title),
      rows,
      h('div', { class: 'actions' }, cancel, submit),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const values = {};
      for (const [name, input] of Object.entries(inputs)) {
        values[name] = input.type === 'checkbox' ? input.checked : input.value.trim();
      }
      close(values);
    });
    function close(values) {
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(values);
    }
    function onCancel(event) {
      event.preventDefault();
      close(null);
    }
    dialog.addEventListener('cancel', onCancel);
    fill(dialog, form);
    dialog.showModal();
    const first = fields.length ? inputs[fields[0].name] : submit;
    first.focus();
  });
}

/** `key=value` lines to an object, or a sentence saying which line is wrong. */
export function parseMetadata(text) {
  const out = {};
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`Metadata lines are key=value; "${line}" is not.`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

export function metadataText(metadata) {
  return Object.entries(metadata || {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

export function metadataCell(metadata) {
  const entries = Object.entries(metadata || {});
  if (entries.length === 0) return h('span', { class: 'muted' }, '—');
  return h(
    'ul',
    { class: 'meta' },
    entries.map(([k, v]) => h('li', {}, h('code', {}, k), '=', h('code', {}, v))),
  );
}

/** "12 s ago" from epoch milliseconds. */
export function ago(epochMs) {
  if (!epochMs) return '—';
  const seconds = Math.max(0, Math.round((Date.now() - epochMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

/** A table with a header row; `rows` are arrays of cells. */
export function table(headers, rows, empty = 'Nothing here yet.') {
  if (rows.length === 0) return h('p', { class: 'muted empty' }, empty);
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, headers.map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, i) => h('td', { 'data-label': headers[i] || null }, cell))))),
    ),
  );
}
