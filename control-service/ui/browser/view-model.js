// @ts-check
/**
 * The dashboard's view model (docs/DESIGN.md §26): what the page shows, computed from the
 * API's answers. Pure — no DOM, no fetch, no clock (`now` is an argument) — so it runs in
 * the browser as it is and in the unit tests (view-model.test.ts). Shapes are the API's
 * (common/api.ts, common/model.ts); the page passes the migration phases in, from
 * /ui/protocol.js, generated from the one definition (common/migration-protocol.ts).
 */

/** @typedef {{ uuid: string, host: string, state: string, labels: Record<string, string>, last_seen: number | null, cordoned?: boolean, draining?: boolean }} NodeInfo */
/** @typedef {{ name: string, project: string | null, image: string, node_uuid: string | null, state: string, health: string | null, migration: Migration | null, replicas: { node: string, lag_seconds: number | null, state: string }[], last_error?: string | null, unschedulable_reason: string | null }} AppInfo */
/** @typedef {{ name: string, ports?: { internal: number, external: number, protocol?: string }[] }} AppConfig */
/** @typedef {{ id: string, application: string | null, from: string, to: string, phase: string, round: number, bytes_sent: number, bytes_total: number | null, rate_bytes_per_second: number | null, started_at: number, updated_at: number, cutover_started_at: number | null, cutover_ms: number | null, error: string | null, failover?: { failed_silent_ms: number, data_window_seconds: number | null } }} Migration */
/** @typedef {{ dataset_id: string, name: string | null, primary: string, maximum_size: number | null, replicas: string[], applications: string[], copies: { node_uuid: string, writable: boolean, used_bytes: number, snapshots: number, newest_snapshot: string | null }[] }} DatasetInfo */
/** @typedef {{ phase: string, at: number }} Step */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `33.0 MiB`; `—` for null. */
export function formatBytes(/** @type {number | null | undefined} */ bytes) {
  if (bytes === null || bytes === undefined) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 10 min`. */
export function formatDuration(/** @type {number} */ ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `3.2 s ago`; `never` for null. */
export function formatAgo(/** @type {number | null} */ at, /** @type {number} */ now) {
  return at === null ? 'never' : `${formatDuration(Math.max(0, now - at))} ago`;
}

/** A node's name: its `name` label, else its address; an unknown uuid's first 8 characters. */
export function nodeName(/** @type {NodeInfo[]} */ nodes, /** @type {string | null} */ uuid) {
  if (uuid === null) return '—';
  const node = nodes.find((n) => n.uuid === uuid);
  return node ? (node.labels.name ?? node.host) : uuid.slice(0, 8);
}

/** One row per node: its state, when it was last heard, labels, and the applications on it. */
export function nodeRows(/** @type {NodeInfo[]} */ nodes, /** @type {AppInfo[]} */ apps, /** @type {number} */ now) {
  return [...nodes]
    .sort((a, b) => nodeName(nodes, a.uuid).localeCompare(nodeName(nodes, b.uuid)))
    .map((n) => ({
      uuid: n.uuid,
      name: nodeName(nodes, n.uuid),
      host: n.host,
      state: n.state,
      scheduling: n.draining ? 'draining' : n.cordoned ? 'cordoned' : 'schedulable',
      lastSeen: formatAgo(n.last_seen, now),
      labels: Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(', '),
      applications: apps.filter((a) => a.node_uuid === n.uuid).map((a) => a.name).sort(),
    }));
}

/**
 * One row per application: node, state and health, its ports (external → internal, as
 * declared: every node's proxy answers on the external one), replicas with their lag.
 */
export function applicationRows(/** @type {AppInfo[]} */ apps, /** @type {AppConfig[]} */ configs, /** @type {NodeInfo[]} */ nodes) {
  return [...apps]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((a) => {
      const config = configs.find((c) => c.name === a.name);
      return {
        name: a.name,
        project: a.project ?? '—',
        node: nodeName(nodes, a.node_uuid),
        nodeUuid: a.node_uuid,
        state: a.state,
        health: a.health ?? '—',
        ports: (config?.ports ?? []).map((p) => `${p.external}→${p.internal}${p.protocol === 'udp' ? '/udp' : ''}`).join(', ') || '—',
        replicas: a.replicas.map((r) => `${nodeName(nodes, r.node)} ${r.state}${r.lag_seconds === null ? '' : `, lag ${r.lag_seconds.toFixed(1)} s`}`),
        moving: a.migration !== null && !isTerminal(a.migration.phase),
        problem: a.last_error ?? a.unschedulable_reason ?? null,
        targets: moveTargets(a, nodes),
      };
    });
}

/** Where an application can be moved from the page: known nodes other than its own, not cordoned. */
export function moveTargets(/** @type {Pick<AppInfo, 'node_uuid'>} */ app, /** @type {NodeInfo[]} */ nodes) {
  return nodes
    .filter((n) => n.uuid !== app.node_uuid && n.state === 'known' && !n.cordoned && !n.draining)
    .map((n) => ({ uuid: n.uuid, name: nodeName(nodes, n.uuid) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** One row per dataset: primary, replicas, size on the primary, snapshots there. */
export function datasetRows(/** @type {DatasetInfo[]} */ datasets, /** @type {NodeInfo[]} */ nodes) {
  return datasets.map((d) => {
    const primary = d.copies.find((c) => c.node_uuid === d.primary);
    return {
      id: d.dataset_id,
      name: d.name ?? d.dataset_id.slice(0, 8),
      applications: d.applications.join(', ') || '—',
      primary: nodeName(nodes, d.primary),
      replicas: d.replicas.map((r) => nodeName(nodes, r)).join(', ') || '—',
      size: `${formatBytes(primary?.used_bytes ?? null)}${d.maximum_size === null ? '' : ` of ${formatBytes(d.maximum_size)}`}`,
      snapshots: primary ? `${primary.snapshots}${primary.newest_snapshot ? ` (newest ${primary.newest_snapshot.replace(/^.*@/, '')})` : ''}` : '—',
    };
  });
}

/** done and failed end a migration. */
export function isTerminal(/** @type {string} */ phase) {
  return phase === 'done' || phase === 'failed';
}

/**
 * What the progress bar shows: the share of the current round's bytes sent (100 once done),
 * and a line with the round, bytes, rate and the cutover pause once it is known.
 */
export function progressOf(/** @type {Migration} */ m) {
  const percent = m.phase === 'done' ? 100 : m.bytes_total ? Math.min(100, Math.round((100 * m.bytes_sent) / m.bytes_total)) : 0;
  const parts = [`round ${m.round}`, `${formatBytes(m.bytes_sent)} / ${formatBytes(m.bytes_total)}`];
  if (m.rate_bytes_per_second !== null && !isTerminal(m.phase)) parts.push(`${formatBytes(m.rate_bytes_per_second)}/s`);
  if (m.cutover_ms !== null) parts.push(`cutover pause ${formatDuration(m.cutover_ms)}`);
  return { percent, label: parts.join(' · ') };
}

/**
 * Adds what a migration record says about its phases to what was seen of it before (pure:
 * a new list). A record tells its start (pending), its cutover's start, and that it is in
 * `phase` since `updated_at` at the latest; the event stream shows each step as it happens.
 */
export function recordSteps(/** @type {Step[]} */ seen, /** @type {Migration} */ m) {
  const steps = [...seen];
  const add = (/** @type {string} */ phase, /** @type {number} */ at) => {
    if (!steps.some((s) => s.phase === phase)) steps.push({ phase, at });
  };
  add('pending', m.started_at);
  if (m.cutover_started_at !== null) add('cutover', m.cutover_started_at);
  add(m.phase, m.updated_at);
  return steps.sort((a, b) => a.at - b.at);
}

/**
 * The phase timeline: every phase of a move in order (`failed` in place of those not
 * reached when it failed), each `done`, `current` or `todo`, with how long it lasted when
 * both ends were seen.
 */
export function timeline(/** @type {readonly string[]} */ phases, /** @type {Step[]} */ steps, /** @type {Migration} */ m) {
  const order = phases.filter((p) => p !== 'failed');
  const at = new Map(steps.map((s) => [s.phase, s.at]));
  const currentIndex = m.phase === 'failed' ? -1 : order.indexOf(m.phase);
  const reached = order.filter((p) => at.has(p) || order.indexOf(p) <= currentIndex);
  const shown = m.phase === 'failed' ? [...reached.filter((p) => at.has(p)), 'failed'] : order;
  return shown.map((phase, i) => {
    const start = at.get(phase) ?? null;
    const next = shown[i + 1];
    const end = next === undefined ? null : (at.get(next) ?? null);
    const status = phase === m.phase ? (isTerminal(phase) ? 'done' : 'current') : start !== null || order.indexOf(phase) < currentIndex ? 'done' : 'todo';
    return { phase, status, took: start !== null && end !== null && phase !== m.phase ? formatDuration(end - start) : null };
  });
}

/** The question the page asks before an operation, and the request it then sends. */
export function confirmation(/** @type {{ kind: 'move', app: string, from: string, to: string, toUuid: string } | { kind: 'cordon' | 'uncordon' | 'drain', node: string, uuid: string } | { kind: 'cancel', id: string, app: string | null }} */ op) {
  switch (op.kind) {
    case 'move':
      return {
        question: `Move ${op.app} from ${op.from} to ${op.to}? Its data goes with it; its clients pause during the cutover.`,
        method: 'POST',
        path: `/v1/drover/applications/${encodeURIComponent(op.app)}/move`,
        body: { node_uuid: op.toUuid },
      };
    case 'cordon':
      return { question: `Cordon ${op.node}? Nothing new will be placed there; what runs there stays.`, method: 'POST', path: `/v1/drover/nodes/${op.uuid}/cordon`, body: null };
    case 'uncordon':
      return { question: `Uncordon ${op.node}? It can take new applications again.`, method: 'POST', path: `/v1/drover/nodes/${op.uuid}/uncordon`, body: null };
    case 'drain':
      return { question: `Drain ${op.node}? Every application on it moves off with its data.`, method: 'POST', path: `/v1/drover/nodes/${op.uuid}/drain`, body: null };
    case 'cancel':
      return { question: `Cancel the move of ${op.app ?? 'this dataset'}? It stays on (or returns to) its source.`, method: 'POST', path: `/v1/drover/migrations/${op.id}/cancel`, body: null };
  }
}

/** Whether the page offers to cancel: before handoff only (the API refuses later). */
export function cancellable(/** @type {Migration} */ m) {
  return m.phase === 'pending' || m.phase === 'pre-copy' || m.phase === 'cutover';
}

/** One line of the event feed (`types` of `GET /v1/drover/events`). */
export function eventLine(/** @type {string} */ type, /** @type {any} */ data, /** @type {NodeInfo[]} */ nodes) {
  switch (type) {
    case 'migration': {
      const m = /** @type {Migration} */ (data);
      if (m.failover) return `failover: ${m.application ?? 'dataset'} from ${nodeName(nodes, m.from)} to ${nodeName(nodes, m.to)} (${m.from === m.to ? 'in place' : `data window ${m.failover.data_window_seconds ?? '?'} s`})`;
      return `move ${m.application ?? 'dataset'} ${nodeName(nodes, m.from)} → ${nodeName(nodes, m.to)}: ${m.phase}${m.error ? ` (${m.error})` : ''}`;
    }
    case 'node':
      return `node ${data.host ?? nodeName(nodes, data.uuid)} is ${data.state}`;
    case 'replication':
      return `replica of dataset ${String(data.dataset_id).slice(0, 8)} on ${nodeName(nodes, data.replica)}: ${data.state}${data.problem ? ` — ${data.problem}` : ''}`;
    case 'configuration':
      return `configuration version ${data.version}`;
    default:
      return `${type}: ${JSON.stringify(data)}`;
  }
}
