// The page of one service: its instances cluster by cluster (every instance
// as stored, offline ones too, health as checked), with weight, metadata,
// offline/online and deregistration; the health checks of a cp service's
// clusters. Follows the service's revision.

import * as api from './api.js';
import {
  h, fill, modeBadge, flag, table, act, confirmDialog, formDialog, errorBox, parseMetadata, metadataText,
  metadataCell, ago,
} from './ui.js';
import { editService } from './services.js';

export async function render(main, params, signal) {
  const { ns, group, service } = params;
  const base = `/v1/namespaces/${api.seg(ns)}/services/${api.seg(service)}`;
  const header = h('div', {});
  const body = h('div', { id: 'instances' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(
    main,
    h(
      'p',
      { class: 'crumbs' },
      h('a', { href: '#/' }, 'Namespaces'),
      ' / ',
      h('a', { href: `#/ns/${api.seg(ns)}` }, ns),
      ' / ',
      `${group} / ${service}`,
    ),
    header,
    body,
  );
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const subscribers = h('section', { id: 'subscribers' });
  main.append(pager, subscribers);
  const showSubscribers = async () => {
    try {
      const { body: found } = await api.get(`${base}/subscribers${api.query({ group })}`, { signal });
      fill(subscribers, subscriberSection(found, showSubscribers));
    } catch (err) {
      if (err.name !== 'AbortError') fill(subscribers, errorBox(err));
    }
  };
  const context = { ns, group, service, base };
  let page = 1;
  let watching = null;
  function follow() {
    if (watching) watching.abort();
    watching = new AbortController();
    const mine = watching.signal;
    signal.addEventListener('abort', () => watching.abort());
    api.watch(
      `${base}/instances${api.query({ group, all: true, page, page_size: PAGE_SIZE })}`,
      async (list) => {
        let svc = null;
        try {
          svc = (await api.get(`${base}${api.query({ group })}`, { signal: mine })).body;
        } catch (err) {
          if (err.status !== 404) throw err;
        }
        if (mine.aborted) return;
        fill(header, serviceHeader(context, list, svc));
        fill(body, instanceSections(context, list, svc));
        fill(pager, pagerButtons(list));
        await showSubscribers();
      },
      (err) => fill(body, errorBox(err)),
      mine,
    );
  }
  function pagerButtons(list) {
    const total = list.total ?? list.instances.length;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    if (pages === 1) return [];
    const go = (to) => {
      page = to;
      follow();
    };
    return [
      h('button', { type: 'button', class: 'secondary', disabled: page <= 1, onclick: () => go(page - 1) }, '← Previous'),
      h('span', {}, ` Page ${page} of ${pages} · ${total} instances `),
      h('button', { type: 'button', class: 'secondary', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next →'),
    ];
  }
  follow();
}

/** Instances per page: the server pages them (ordered by cluster, address, port). */
const PAGE_SIZE = 100;

function serviceHeader(context, list, svc) {
  const edit = svc
    ? h('button', { type: 'button', class: 'secondary', onclick: () => editService(context.ns, svc) }, 'Edit service')
    : null;
  const facts = svc
    ? [
        ['Protect threshold', String(svc.protect_threshold)],
        ['Threshold reached', list.reach_protection_threshold ? 'yes: lists show unhealthy instances as healthy' : 'no'],
        ['Instances', `${svc.instance_count} (${svc.healthy_count} healthy and enabled)`],
        ['Revision', String(list.revision)],
      ]
    : [['Revision', String(list.revision)]];
  return [
    h('div', { class: 'title' }, h('h1', {}, `${context.service} `, modeBadge(list.mode)), edit),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    svc && Object.keys(svc.metadata).length ? h('div', {}, h('h2', {}, 'Metadata'), metadataCell(svc.metadata)) : null,
  ];
}

function instanceSections(context, list, svc) {
  const byCluster = new Map();
  for (const instance of list.instances) {
    if (!byCluster.has(instance.cluster)) byCluster.set(instance.cluster, []);
    byCluster.get(instance.cluster).push(instance);
  }
  const settings = (svc && svc.clusters) || {};
  // Clusters with settings but no instances show too, when one page holds everything.
  if ((list.total ?? 0) <= PAGE_SIZE) {
    for (const name of Object.keys(settings)) if (!byCluster.has(name)) byCluster.set(name, []);
  }
  if (byCluster.size === 0) return h('p', { class: 'muted empty' }, 'No instances.');
  return [...byCluster.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([cluster, instances]) =>
      h(
        'section',
        { class: 'cluster', dataset: { cluster } },
        h('h2', {}, `Cluster ${cluster}`),
        list.mode === 'cp' ? healthCheck(context, cluster, settings[cluster]) : null,
        instanceTable(context, list.mode, instances),
      ),
    );
}

/** The gRPC subscriptions held by this node (subscriptions do not change the
 * service's revision: read again with each change and on Refresh). */
function subscriberSection(found, refresh) {
  const rows = found.subscribers.map((s) => [
    h('code', {}, s.connection),
    h('code', {}, s.remote),
    s.app || h('span', { class: 'muted' }, '—'),
    s.client_version || h('span', { class: 'muted' }, '—'),
    s.clusters || 'all',
    String(s.acked_revision),
  ]);
  return [
    h(
      'div',
      { class: 'title' },
      h('h2', {}, `gRPC subscribers on node ${found.node}`),
      h('button', { type: 'button', class: 'secondary small', onclick: refresh }, 'Refresh'),
    ),
    table(['Connection', 'Client address', 'App', 'SDK', 'Clusters', 'Acknowledged revision'], rows, 'No gRPC client on this node subscribes to this service.'),
  ];
}

function describeCheck(check) {
  if (!check || check.type === 'tcp') return `TCP connect to ${check && check.port ? `port ${check.port}` : "the instance's port"}`;
  if (check.type === 'http') return `HTTP GET ${check.path} on ${check.port ? `port ${check.port}` : "the instance's port"}, 200 expected`;
  return 'none: health is set by hand';
}

function healthCheck(context, cluster, settings) {
  const check = settings ? settings.health_check : null;
  const edit = async () => {
    const values = await formDialog(`Health check of cluster ${cluster}`, [
      {
        name: 'type',
        label: 'Check',
        type: 'select',
        value: check ? check.type : 'tcp',
        options: [
          ['tcp', 'TCP connect'],
          ['http', 'HTTP GET, 200 expected'],
          ['none', 'None (health set by hand)'],
        ],
      },
      { name: 'path', label: 'HTTP path', value: check && check.path ? check.path : '/' },
      { name: 'port', label: "Port (empty: the instance's own)", type: 'number', value: check && check.port ? check.port : '', min: 1, max: 65535 },
    ]);
    if (!values) return;
    const port = values.port ? Number(values.port) : undefined;
    const healthCheck =
      values.type === 'none' ? { type: 'none' } : values.type === 'http' ? { type: 'http', path: values.path || '/', port } : { type: 'tcp', port };
    await act(`Health check of ${cluster} saved.`, () =>
      api.put(`${context.base}/clusters/${api.seg(cluster)}${api.query({ group: context.group })}`, {
        health_check: healthCheck,
        metadata: settings ? settings.metadata : {},
      }),
    );
  };
  return h(
    'p',
    { class: 'check' },
    'Health check: ',
    h('strong', {}, describeCheck(check)),
    ' ',
    h('button', { type: 'button', class: 'secondary small', onclick: edit }, 'Change'),
  );
}

function instanceTable(context, mode, instances) {
  // In a cluster each instance has an owner: the node running its lease
  // (ap) or probing it (cp).
  const clustered = instances.some((inst) => inst.owner !== undefined);
  const rows = instances.map((inst) => {
      const label = `${inst.ip}:${inst.port}`;
      return [
        h('code', { class: 'addr' }, label),
        clustered ? `node ${inst.owner}` : null,
        String(inst.weight),
        flag(inst.healthy, 'healthy', 'unhealthy'),
        flag(inst.enabled, 'online', 'offline'),
        inst.ephemeral ? 'ephemeral' : 'persistent',
        metadataCell(inst.metadata),
        liveness(inst),
        h(
          'div',
          { class: 'buttons' },
          h('button', { type: 'button', class: 'secondary', onclick: () => editInstance(context, inst) }, 'Edit'),
          h(
            'button',
            { type: 'button', class: 'secondary', dataset: { action: inst.enabled ? 'offline' : 'online', instance: label }, onclick: () => setEnabled(context, inst, !inst.enabled) },
            inst.enabled ? 'Take offline' : 'Bring online',
          ),
          h(
            'button',
            { type: 'button', class: 'danger', dataset: { action: 'deregister', instance: label }, onclick: () => deregister(context, inst) },
            'Deregister',
          ),
        ),
      ];
    });
  const headers = ['Address', 'Owner', 'Weight', 'Health', 'Traffic', 'Kind', 'Metadata', mode === 'ap' ? 'Heartbeat or connection' : 'Checked', ''];
  return table(
    clustered ? headers : headers.filter((title) => title !== 'Owner'),
    rows.map((cells) => cells.filter((cell) => cell !== null)),
    'No instances in this cluster.',
  );
}

/** What keeps an instance listed: heartbeats, a gRPC connection, or probes. */
function liveness(inst) {
  if (inst.connected_to !== undefined) {
    return h('span', { title: 'Lives as long as its Nacos gRPC connection; no heartbeats' }, `gRPC connection on node ${inst.connected_to}`);
  }
  if (!inst.ephemeral) return h('span', { class: 'muted' }, 'probed');
  if (inst.last_renew_ms) return ago(inst.last_renew_ms);
  return h('span', { class: 'muted', title: 'Another node runs this lease' }, 'on its owner');
}

function instancePath(context, inst) {
  return `${context.base}/instances/${api.seg(inst.ip)}/${inst.port}${api.query({ group: context.group, cluster: inst.cluster })}`;
}

async function editInstance(context, inst) {
  const values = await formDialog(`Edit ${inst.ip}:${inst.port}`, [
    { name: 'weight', label: 'Weight (0–10000)', type: 'number', value: inst.weight, step: 'any', min: 0, max: 10000 },
    { name: 'metadata', label: 'Metadata to set (key=value per line; merged)', type: 'textarea', value: metadataText(inst.metadata) },
  ]);
  if (!values) return;
  await act(`${inst.ip}:${inst.port} saved.`, () =>
    api.patch(instancePath(context, inst), { weight: Number(values.weight), metadata: parseMetadata(values.metadata) }),
  );
}

async function setEnabled(context, inst, enabled) {
  await act(`${inst.ip}:${inst.port} ${enabled ? 'back online' : 'taken offline'}.`, () =>
    api.patch(instancePath(context, inst), { enabled }),
  );
}

async function deregister(context, inst) {
  const sure = await confirmDialog(`Deregister ${inst.ip}:${inst.port} from ${context.service}?`, 'Deregister');
  if (!sure) return;
  await act(`${inst.ip}:${inst.port} deregistered.`, () => api.del(instancePath(context, inst)));
}
