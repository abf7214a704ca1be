// The services page of a namespace: search by name and group, paged on the
// server; instance and healthy counts and whether the protect threshold
// fires; create, edit, delete. Follows the namespace's revision.

import * as api from './api.js';
import {
  h, fill, modeBadge, table, act, confirmDialog, formDialog, errorBox, parseMetadata, metadataText,
} from './ui.js';

const PAGE_SIZE = 100;

export async function render(main, { ns }, signal) {
  const path = `/v1/namespaces/${api.seg(ns)}`;
  const { body: namespace } = await api.get(path, { signal });
  const state = { search: '', group: '', page: 1 };
  const list = h('div', { id: 'services' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const search = h('input', { id: 'service-search', type: 'search', placeholder: 'Name contains…', 'aria-label': 'Search services by name' });
  const group = h('input', { id: 'service-group', type: 'search', placeholder: 'Group', 'aria-label': 'Group' });
  let timer = null;
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.search = search.value.trim();
      state.group = group.value.trim();
      state.page = 1;
      follow();
    }, 200);
  };
  search.addEventListener('input', restart);
  group.addEventListener('input', restart);

  let watching = null;
  function follow() {
    if (watching) watching.abort();
    watching = new AbortController();
    signal.addEventListener('abort', () => watching.abort());
    const url = `${path}/services${api.query({ search: state.search, group: state.group, page: state.page, page_size: PAGE_SIZE })}`;
    api.watch(
      url,
      (page) => {
        fill(list, serviceTable(ns, page));
        fill(pager, pagerButtons(page));
      },
      (err) => fill(list, errorBox(err)),
      watching.signal,
    );
  }
  function pagerButtons(page) {
    const pages = Math.max(1, Math.ceil(page.total / page.page_size));
    const go = (to) => {
      state.page = to;
      follow();
    };
    return [
      h('button', { type: 'button', class: 'secondary', disabled: page.page <= 1, onclick: () => go(page.page - 1) }, '← Previous'),
      h('span', {}, ` Page ${page.page} of ${pages} · ${page.total} service${page.total === 1 ? '' : 's'} `),
      h('button', { type: 'button', class: 'secondary', disabled: page.page >= pages, onclick: () => go(page.page + 1) }, 'Next →'),
    ];
  }

  fill(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Namespaces'), ' / ', ns),
    h(
      'div',
      { class: 'title' },
      h('h1', {}, `Namespace ${ns} `, modeBadge(namespace.mode)),
      h('button', { type: 'button', class: 'primary', id: 'create-service', onclick: () => createService(ns) }, 'Create service'),
    ),
    namespace.description ? h('p', {}, namespace.description) : null,
    namespace.dns ? null : h('p', { class: 'note' }, 'DNS is closed for this namespace: its names are refused.'),
    h('div', { class: 'filters' }, search, group),
    list,
    pager,
  );
  follow();
}

function serviceTable(ns, page) {
  const rows = page.services.map((svc) => [
    svc.group,
    h('a', { href: `#/ns/${api.seg(ns)}/svc/${api.seg(svc.group)}/${api.seg(svc.name)}`, class: 'svc-link' }, svc.name),
    String(svc.instance_count),
    h('span', { class: svc.healthy_count < svc.instance_count ? 'warn' : '' }, String(svc.healthy_count)),
    String(svc.protect_threshold),
    svc.reach_protection_threshold
      ? h('span', { class: 'flag warn', title: 'Lists show every enabled instance, the unhealthy ones as healthy' }, 'reached')
      : h('span', { class: 'muted' }, 'no'),
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'button', class: 'secondary', onclick: () => editService(ns, svc) }, 'Edit'),
      h('button', { type: 'button', class: 'danger', onclick: () => deleteService(ns, svc) }, 'Delete'),
    ),
  ]);
  return table(
    ['Group', 'Service', 'Instances', 'Healthy', 'Protect threshold', 'Threshold reached', ''],
    rows,
    'No services match.',
  );
}

async function createService(ns) {
  const values = await formDialog(`Create a service in ${ns}`, [
    { name: 'name', label: 'Name', required: true },
    { name: 'group', label: 'Group', value: 'DEFAULT_GROUP' },
    { name: 'protect_threshold', label: 'Protect threshold (0–1)', type: 'number', value: 0, step: 0.05, min: 0, max: 1 },
    { name: 'metadata', label: 'Metadata (key=value per line)', type: 'textarea' },
  ], 'Create');
  if (!values) return;
  await act(`Service ${values.name} created.`, () =>
    api.post(`/v1/namespaces/${api.seg(ns)}/services`, {
      name: values.name,
      group: values.group || undefined,
      protect_threshold: Number(values.protect_threshold || 0),
      metadata: parseMetadata(values.metadata),
    }),
  );
}

export async function editService(ns, svc) {
  const values = await formDialog(`Edit service ${svc.group}/${svc.name}`, [
    { name: 'protect_threshold', label: 'Protect threshold (0–1)', type: 'number', value: svc.protect_threshold, step: 0.05, min: 0, max: 1 },
    { name: 'metadata', label: 'Metadata (key=value per line)', type: 'textarea', value: metadataText(svc.metadata) },
  ]);
  if (!values) return;
  await act(`Service ${svc.name} saved.`, () =>
    api.put(`/v1/namespaces/${api.seg(ns)}/services/${api.seg(svc.name)}${api.query({ group: svc.group })}`, {
      protect_threshold: Number(values.protect_threshold || 0),
      metadata: parseMetadata(values.metadata),
    }),
  );
}

async function deleteService(ns, svc) {
  const sure = await confirmDialog(`Delete service ${svc.group}/${svc.name}? It must hold no instances.`);
  if (!sure) return;
  await act(`Service ${svc.name} deleted.`, () =>
    api.del(`/v1/namespaces/${api.seg(ns)}/services/${api.seg(svc.name)}${api.query({ group: svc.group })}`),
  );
}
