// The cluster page: the node this console talks to, the members and their
// state, the Raft leader, term and indexes with each follower's lag, the AP
// ring and replication queues, health probes, gRPC connections and
// self-preservation. Read again whenever the registry changes (a blocking
// query on the node-wide revision) or on request: no polling.

import * as api from './api.js';
import { h, fill, flag, table, errorBox } from './ui.js';

export function render(main, _params, signal) {
  const body = h('div', { id: 'cluster' }, h('p', { class: 'muted' }, 'Loading…'));
  const stamp = h('span', { class: 'muted' });
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh');
  fill(main, h('div', { class: 'title' }, h('h1', {}, 'Cluster'), h('div', {}, stamp, ' ', refresh)), body);
  async function load() {
    try {
      const [{ body: status }, { body: health }] = await Promise.all([
        api.get('/v1/cluster', { signal }),
        api.get('/health', { signal }),
      ]);
      fill(body, view(status, health));
      fill(stamp, `as of ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      if (err.name !== 'AbortError') fill(body, errorBox(err));
    }
  }
  api.watch('/v1/namespaces', () => load(), (err) => fill(body, errorBox(err)), signal);
}

function view(status, health) {
  const sections = [
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'This node'),
      h('dd', { id: 'this-node' }, `node ${status.node} at ${location.host}`),
      h('dt', {}, 'Self-preservation'),
      h('dd', {}, health.self_preservation ? 'active: expired leases are kept' : 'inactive'),
      h('dt', {}, 'Renewals in the last minute'),
      h('dd', {}, `${health.renewals_last_min} of ${health.expected_renewals_per_min} expected`),
      h('dt', {}, 'Instances held'),
      h('dd', {}, String(health.instances)),
      h('dt', {}, 'Leases run here'),
      h('dd', { id: 'leases' }, `${health.leases ?? '—'}: the ephemeral instances this node owns`),
    ),
  ];
  if (status.raft) sections.push(raftSection(status.raft, status.node));
  else sections.push(h('p', { class: 'muted' }, 'Single node: no Raft cluster configured.'));
  if (status.ap) sections.push(apSection(status.ap));
  if (status.health) sections.push(probeSection(status.health));
  if (status.grpc) sections.push(grpcSection(status.grpc));
  return sections;
}

function raftSection(raft, self) {
  const members = [
    ...Object.entries(raft.voters).map(([id, addr]) => [id, addr, 'voter']),
    ...Object.entries(raft.learners).map(([id, addr]) => [id, addr, 'learner']),
  ];
  const rows = members.map(([id, addr, role]) => [
    Number(id) === self ? h('strong', {}, `${id} (this node)`) : id,
    addr ? h('code', {}, addr) : h('span', { class: 'muted' }, 'none (single node)'),
    role,
    Number(id) === raft.leader ? h('span', { class: 'flag on' }, 'leader') : '',
    raft.lag[id] !== undefined ? `${raft.lag[id]} entries` : Number(id) === raft.leader ? '—' : h('span', { class: 'muted' }, 'known on the leader'),
  ]);
  return h(
    'section',
    {},
    h('h2', {}, 'CP engine (Raft)'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'State of this node'),
      h('dd', {}, raft.state),
      h('dt', {}, 'Leader'),
      h('dd', {}, raft.leader === null || raft.leader === undefined ? h('span', { class: 'warn' }, 'none known') : `node ${raft.leader}`),
      h('dt', {}, 'Term'),
      h('dd', {}, String(raft.term)),
      h('dt', {}, 'Last log / committed / applied'),
      h('dd', {}, `${raft.last_log_index} / ${raft.commit_index} / ${raft.applied_index}`),
    ),
    table(['Node', 'Cluster address', 'Role', '', 'Lag'], rows),
  );
}

function apSection(ap) {
  const queues = new Map(ap.queues.map((q) => [q.peer, q]));
  const rows = ap.members.map((m) => [
    m.this_node ? h('strong', {}, `${m.id} (this node)`) : String(m.id),
    h('code', {}, m.addr),
    h('span', { class: m.state === 'up' ? 'flag on' : 'flag off' }, m.state),
    m.in_ring ? 'yes' : 'no',
    m.ready ? 'yes' : 'no',
    m.last_seen_ms_ago === null || m.last_seen_ms_ago === undefined ? '—' : `${m.last_seen_ms_ago} ms ago`,
    queues.has(m.id) ? `${queues.get(m.id).queued} queued, ${queues.get(m.id).overflows} overflows` : '—',
  ]);
  const share = ap.ring.length
    ? `each owns about ${(100 / ap.ring.length).toFixed(1)} % of the ephemeral instances (rendezvous hash); this node's actual share is its leases above`
    : '—';
  return h(
    'section',
    {},
    h('h2', {}, 'AP engine (Distro)'),
    h('dl', { class: 'facts' }, h('dt', {}, 'Ready'), h('dd', {}, flag(ap.ready, 'ready', 'loading from peers')), h('dt', {}, 'Ring'), h('dd', {}, `${ap.ring.join(', ')}: ${share}`)),
    table(['Node', 'Address', 'State', 'In ring', 'Ready', 'Last seen', 'Replication queue'], rows),
  );
}

function probeSection(health) {
  return h(
    'section',
    {},
    h('h2', {}, 'Health checks of persistent instances'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Checked instances'),
      h('dd', {}, String(health.checked)),
      h('dt', {}, 'Probes / failures / flips'),
      h('dd', {}, `${health.probes} / ${health.probe_failures} / ${health.flips}`),
      h('dt', {}, 'Refused targets'),
      h('dd', {}, String(health.refused)),
    ),
    health.refused_targets.length
      ? table(['Service', 'Cluster', 'Address', 'Rule'], health.refused_targets.map((t) => [t.service, t.cluster, `${t.ip}:${t.port}`, t.rule]))
      : null,
  );
}

function grpcSection(grpc) {
  return h(
    'section',
    {},
    h('h2', {}, 'Nacos gRPC'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Connections'),
      h('dd', {}, `${grpc.connections} open (${grpc.set_up} set up since start, ${grpc.refused} refused)`),
      h('dt', {}, 'Subscriptions'),
      h('dd', {}, String(grpc.subscriptions)),
      h('dt', {}, 'Pushes sent / acknowledged / timed out'),
      h('dd', {}, `${grpc.pushes_sent} / ${grpc.pushes_acked} / ${grpc.push_timeouts}`),
    ),
  );
}
