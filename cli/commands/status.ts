import { isTerminal } from '#common/migration-protocol.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';
import { bytes, duration, labels, ports, replicaList, table } from '../format.ts';

const USAGE = 'drover status [--json]';

/**
 * `drover status`: nodes (known: holding their lease; unknown: silent past it, or named by
 * the configuration but never heard from — never shown as empty; down: silent past the
 * grace too; a silent node says for how long), applications with their node, state
 * (running, stopped, missing, unknown, unplaced), health, ports, its replicas (standby copies
 * with their lag: `n2 3s, n3 seeding`) and a note (why it cannot be placed, or the migration
 * moving it, and the last error about it from its node), and datasets with their primary,
 * size and replicas — a dataset replicated without an application too, each replica that is
 * a problem named with its reason below the table.
 */
export const statusCommand: Command = {
  name: 'status',
  summary: 'show nodes, applications and datasets',
  usage: USAGE,
  async run(ctx, _values, positionals) {
    if (positionals.length > 0) throw usageError(`status takes no arguments, got "${positionals[0]}"`, USAGE);
    const [stateNodes, { containers: configApps }, appStatus, { datasets: configDatasets }, stateDatasets] = await Promise.all([
      ctx.control.nodes(),
      ctx.control.containers(),
      ctx.control.applications(),
      ctx.control.datasets(),
      ctx.control.datasetStates(),
    ]);
    // Each replicated dataset's replicas (the DATASETS table) and the copies failed nodes kept
    // aside after a failover (docs/DESIGN.md §18: a note on the application).
    const replication = await ctx.control.replication().catch(() => []);
    const nodes = stateNodes.map((n) => ({
      uuid: n.uuid,
      host: n.host,
      state: n.state,
      silent_ms: n.silent_ms ?? null,
      labels: n.labels,
      cordoned: n.cordoned ?? false,
      draining: n.draining ?? false,
      applications_left: n.applications_left ?? null,
      host_key_accepted: n.host_key_accepted ?? null,
    }));
    const referenced = [...configApps.map((a) => a.node_uuid), ...configDatasets.map((d) => d.primary)];
    for (const uuid of referenced) {
      if (uuid !== undefined && uuid !== UNPLACED_PRIMARY && !nodes.some((n) => n.uuid === uuid)) nodes.push({ uuid, host: '', state: 'unknown', silent_ms: null, labels: {}, cordoned: false, draining: false, applications_left: null, host_key_accepted: null });
    }
    const hostOf = (uuid: string | null | undefined): string | null =>
      uuid === undefined || uuid === null || uuid === UNPLACED_PRIMARY ? null : nodes.find((n) => n.uuid === uuid)?.host || uuid;
    const applications = configApps.map((app) => {
      const seen = appStatus.find((s) => s.name === app.name);
      const state = seen?.state ?? (app.node_uuid === undefined ? 'unplaced' : 'unknown');
      return {
        name: app.name,
        node_uuid: app.node_uuid ?? null,
        node: hostOf(app.node_uuid),
        state,
        running: state === 'running',
        health: seen?.health ?? null,
        ports: app.ports,
        unschedulable_reason: seen?.unschedulable_reason ?? null,
        migration: seen?.migration ?? null,
        replicas: seen?.replicas ?? [],
        last_error: seen?.last_error ?? null,
        ...(seen?.waiting ? { waiting: seen.waiting } : {}),
        // Several instances (docs/DESIGN.md §30): each with its node, state and health.
        ...(seen?.instances ? { instances: seen.instances.map((i) => ({ ...i, node: hostOf(i.node_uuid) })) } : {}),
        ...(seen?.rollout ? { rollout: seen.rollout } : {}),
      };
    });
    const datasets = configDatasets
      .filter((d) => !d.deleted)
      .map((d) => ({
        dataset_id: d.dataset_id,
        name: d.metadata.name ?? null,
        primary: d.primary,
        node: hostOf(d.primary),
        maximum_size: d.maximum_size,
        path: stateDatasets.find((s) => s.dataset_id === d.dataset_id)?.path ?? null,
        replicas: replication.find((r) => r.dataset_id === d.dataset_id)?.replicas ?? [],
      }));
    if (ctx.json) {
      printJson(ctx.stdout, { nodes, applications, datasets });
      return 0;
    }
    print(ctx.stdout, 'NODES');
    // A silent node says for how long: "unknown (silent 14.0 s)", "down (silent 2m05s)".
    // The operator's cordon follows: "known, cordoned", "known, draining (2 left)", "known, drained".
    const liveness = (n: (typeof nodes)[number]): string => (n.state === 'known' || n.silent_ms === null ? n.state : `${n.state} (silent ${duration(n.silent_ms)})`);
    const cordon = (n: (typeof nodes)[number]): string =>
      !n.cordoned ? '' : !n.draining ? ', cordoned' : n.applications_left === 0 ? ', drained' : `, draining (${n.applications_left ?? '?'} left)`;
    const nodeState = (n: (typeof nodes)[number]): string => `${liveness(n)}${cordon(n)}`;
    print(ctx.stdout, table(['ADDRESS', 'UUID', 'STATE', 'LABELS'], nodes.map((n) => [n.host, n.uuid, nodeState(n), labels(n.labels)])));
    // What the control service refused of a node's reports (docs/DESIGN.md §23): a changed host key.
    for (const n of stateNodes) {
      for (const p of (n.problems ?? []) as Array<{ subject?: unknown; reason?: unknown }>) {
        if (p.subject === `node:${n.uuid}` && typeof p.reason === 'string') print(ctx.stdout, `  ${n.host}: ${p.reason}`);
      }
      // …and the operator's acceptance of a new one (drover node trust-host-key).
      const accepted = n.host_key_accepted;
      if (accepted && !(n.problems ?? []).length) print(ctx.stdout, `  ${n.host}: ssh host key ${accepted.fingerprint} accepted by ${accepted.by} ${new Date(accepted.at).toISOString()} (was ${accepted.previous})`);
    }
    print(ctx.stdout);
    print(ctx.stdout, 'APPLICATIONS');
    // A node's `name` label (n1, n2 in the local cluster), else its address.
    const nameOf = (uuid: string) => stateNodes.find((n) => n.uuid === uuid)?.labels.name ?? hostOf(uuid) ?? uuid;
    const note = (a: (typeof applications)[number]): string | null => {
      const notes: string[] = [];
      if (a.migration && !isTerminal(a.migration.phase)) notes.push(`moving to ${hostOf(a.migration.to)} (${a.migration.phase})`);
      else if (a.unschedulable_reason) notes.push(a.unschedulable_reason);
      if (a.last_error) notes.push(a.last_error);
      if (a.waiting) notes.push(a.waiting);
      // What an application's state cannot say when its node is silent: which node, since when.
      const node = a.instances ? undefined : nodes.find((n) => n.uuid === a.node_uuid);
      if (node !== undefined && node.state !== 'known') notes.push(`node ${node.host || node.uuid} is ${liveness(node)}`);
      if (a.rollout) notes.push(`update ${a.rollout.state}${a.rollout.reason ? `: ${a.rollout.reason}` : ''}`);
      for (const r of replication) {
        if (r.application !== a.name) continue;
        for (const k of r.kept ?? []) notes.push(`copy kept on ${k.node_name ?? hostOf(k.node) ?? k.node}: ${k.name}`);
      }
      return notes.length === 0 ? null : notes.join('; ');
    };
    print(
      ctx.stdout,
      table(
        ['NAME', 'NODE', 'STATE', 'HEALTH', 'PORTS', 'REPLICAS', 'NOTE'],
        applications.map((a) => [a.name, a.instances ? instanceCount(a.instances) : (a.node ?? '(unplaced)'), a.state, a.health, ports(a.ports), replicaList(a.replicas, nameOf) || null, note(a)]),
      ),
    );
    for (const a of applications) {
      for (const i of a.instances ?? []) print(ctx.stdout, `  ${a.name}.${i.id}  ${i.node ?? i.node_uuid}  ${i.state}${i.health ? ` ${i.health}` : ''}${i.draining ? ' draining' : ''}  revision ${i.revision}`);
    }
    print(ctx.stdout);
    print(ctx.stdout, 'DATASETS');
    print(
      ctx.stdout,
      table(
        ['ID', 'NAME', 'PRIMARY', 'SIZE', 'PATH', 'REPLICAS'],
        datasets.map((d) => [d.dataset_id, d.name, d.node ?? '(unplaced)', d.maximum_size === null ? 'unlimited' : bytes(d.maximum_size), d.path, replicaList(d.replicas, nameOf) || null]),
      ),
    );
    for (const d of datasets) {
      for (const r of d.replicas) if (r.problem) print(ctx.stdout, `  ${d.name ?? d.dataset_id} on ${nameOf(r.node)}: ${r.problem}`);
    }
    return 0;
  },
};

/** "3/3 instances": running of those not draining. */
function instanceCount(instances: readonly { state: string; draining: boolean }[]): string {
  const live = instances.filter((i) => !i.draining);
  return `${live.filter((i) => i.state === 'running').length}/${live.length} instances`;
}
