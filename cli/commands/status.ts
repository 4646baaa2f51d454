import { UNPLACED_PRIMARY } from '#common/deploy/index.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';
import { bytes, labels, ports, table } from '../format.ts';

const USAGE = 'drover status [--json]';

/**
 * `drover status`: nodes (known: reporting; unknown: named by the configuration but not
 * reporting — never shown as empty), applications with their node, running, health and
 * ports, and datasets with their primary and size.
 */
export const statusCommand: Command = {
  name: 'status',
  summary: 'show nodes, applications and datasets',
  usage: USAGE,
  options: {},
  async run(ctx, _values, positionals) {
    if (positionals.length > 0) throw usageError(`status takes no arguments, got "${positionals[0]}"`, USAGE);
    const [stateNodes, configApps, stateApps, configDatasets, stateDatasets] = await Promise.all([
      ctx.control.stateNodes(),
      ctx.control.configContainers(),
      ctx.control.stateContainers(),
      ctx.control.configDatasets(),
      ctx.control.stateDatasets(),
    ]);
    const nodes = stateNodes.map((n) => ({ uuid: n.uuid, host: n.host, state: n.state ?? 'known', labels: readLabels(n.labels) }));
    const referenced = [...configApps.map((a) => a.node_uuid), ...configDatasets.map((d) => d.primary)];
    for (const uuid of referenced) {
      if (uuid !== undefined && uuid !== UNPLACED_PRIMARY && !nodes.some((n) => n.uuid === uuid)) nodes.push({ uuid, host: '', state: 'unknown', labels: {} });
    }
    const hostOf = (uuid: string | undefined): string | null =>
      uuid === undefined || uuid === UNPLACED_PRIMARY ? null : (nodes.find((n) => n.uuid === uuid)?.host || uuid);
    const applications = configApps.map((app) => {
      const seen = stateApps.find((s) => s.name === app.name);
      return {
        name: app.name,
        node_uuid: app.node_uuid ?? null,
        node: hostOf(app.node_uuid),
        running: seen?.running ?? null,
        health: seen?.health ?? null,
        ports: app.ports,
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
      }));
    if (ctx.json) {
      printJson(ctx.stdout, { nodes, applications, datasets });
      return 0;
    }
    print(ctx.stdout, 'NODES');
    print(ctx.stdout, table(['ADDRESS', 'UUID', 'STATE', 'LABELS'], nodes.map((n) => [n.host, n.uuid, n.state, labels(n.labels)])));
    print(ctx.stdout);
    print(ctx.stdout, 'APPLICATIONS');
    print(
      ctx.stdout,
      table(
        ['NAME', 'NODE', 'RUNNING', 'HEALTH', 'PORTS'],
        applications.map((a) => [a.name, a.node ?? '(unplaced)', a.running === null ? '?' : a.running ? 'yes' : 'no', a.health, ports(a.ports)]),
      ),
    );
    print(ctx.stdout);
    print(ctx.stdout, 'DATASETS');
    print(
      ctx.stdout,
      table(
        ['ID', 'NAME', 'PRIMARY', 'SIZE', 'PATH'],
        datasets.map((d) => [d.dataset_id, d.name, d.node ?? '(unplaced)', d.maximum_size === null ? 'unlimited' : bytes(d.maximum_size), d.path]),
      ),
    );
    return 0;
  },
};

function readLabels(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
