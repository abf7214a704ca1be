// The namespaces page: every namespace with its mode, counts and DNS rule;
// create, edit, delete. Follows the node-wide revision, so a namespace made
// or filled elsewhere shows up without a reload.

import * as api from './api.js';
import { h, fill, modeBadge, flag, table, act, confirmDialog, formDialog, errorBox } from './ui.js';

export function render(main, _params, signal) {
  const body = h('div', { id: 'namespaces' }, h('p', { class: 'muted' }, 'Loading…'));
  const create = h('button', { type: 'button', class: 'primary', id: 'create-namespace', onclick: createNamespace }, 'Create namespace');
  fill(
    main,
    h('div', { class: 'title' }, h('h1', {}, 'Namespaces'), create),
    h(
      'p',
      { class: 'muted' },
      'Each namespace has a mode, fixed at creation: ',
      modeBadge('ap'),
      ' for ephemeral instances (heartbeats or connections), ',
      modeBadge('cp'),
      ' for persistent instances on Raft.',
    ),
    body,
  );
  api.watch(
    '/v1/namespaces',
    (list) => fill(body, namespaceTable(list.namespaces)),
    (err) => fill(body, errorBox(err)),
    signal,
  );
}

function namespaceTable(namespaces) {
  const rows = namespaces.map((ns) => [
    h('a', { href: `#/ns/${api.seg(ns.id)}`, class: 'ns-link' }, ns.id),
    ns.name !== ns.id ? ns.name : '',
    ns.description || h('span', { class: 'muted' }, '—'),
    modeBadge(ns.mode),
    String(ns.service_count),
    String(ns.instance_count ?? '—'),
    flag(ns.dns, 'answered', 'closed'),
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'button', class: 'secondary', onclick: () => editNamespace(ns) }, 'Edit'),
      ns.id === 'public'
        ? null
        : h('button', { type: 'button', class: 'danger', onclick: () => deleteNamespace(ns) }, 'Delete'),
    ),
  ]);
  return table(['Id', 'Name', 'Description', 'Mode', 'Services', 'Instances', 'DNS', ''], rows, 'No namespaces.');
}

async function createNamespace() {
  const values = await formDialog('Create a namespace', [
    { name: 'id', label: 'Id', required: true, help: 'Used in every path; letters, digits, - and _.' },
    {
      name: 'mode',
      label: 'Mode (cannot change later)',
      type: 'select',
      value: 'ap',
      options: [
        ['ap', 'AP: ephemeral instances, heartbeats, available under partition'],
        ['cp', 'CP: persistent instances on Raft, checked by the server'],
      ],
    },
    { name: 'name', label: 'Display name' },
    { name: 'description', label: 'Description' },
    { name: 'dns', label: 'Answered over DNS', type: 'checkbox', value: true },
  ], 'Create');
  if (!values) return;
  await act(`Namespace ${values.id} created.`, () =>
    api.post('/v1/namespaces', {
      id: values.id,
      mode: values.mode,
      name: values.name || undefined,
      description: values.description || undefined,
      dns: values.dns,
    }),
  );
}

async function editNamespace(ns) {
  const values = await formDialog(`Edit namespace ${ns.id} (${ns.mode.toUpperCase()})`, [
    { name: 'name', label: 'Display name', value: ns.name },
    { name: 'description', label: 'Description', value: ns.description },
    { name: 'dns', label: 'Answered over DNS', type: 'checkbox', value: ns.dns },
  ]);
  if (!values) return;
  await act(`Namespace ${ns.id} saved.`, () =>
    api.patch(`/v1/namespaces/${api.seg(ns.id)}`, {
      name: values.name,
      description: values.description,
      dns: values.dns,
    }),
  );
}

async function deleteNamespace(ns) {
  const sure = await confirmDialog(`Delete namespace ${ns.id}? Only an empty namespace can be deleted.`);
  if (!sure) return;
  await act(`Namespace ${ns.id} deleted.`, () => api.del(`/v1/namespaces/${api.seg(ns.id)}`));
}
