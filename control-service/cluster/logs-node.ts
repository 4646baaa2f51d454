/**
 * Which node to ask for an application's logs (docs/DESIGN.md §27): the one whose report has
 * its container running; else, the node the configuration places it on, if that node reports
 * a container of it (stopped: its last output); else any node that reports one. Pure.
 *
 * An application with several instances (docs/DESIGN.md §30) has one container per instance,
 * `<name>.<id>`: its logs are those of its first instance that runs (else the first any node
 * reports), and `<name>.<id>` names one instance, as `drover status` lists them.
 */
import type { Application, ObservedContainer } from '#common/model.ts';
import { instanceName, isReplicated } from '../desired/instances.ts';

export interface ReportedNode {
  uuid: string;
  containers: ReadonlyMap<string, ObservedContainer>;
}

export function logsNodeOf(app: string, placedOn: string | undefined, nodes: Iterable<ReportedNode>): string | null {
  const having = [...nodes].filter((n) => n.containers.has(app));
  const running = having.find((n) => n.containers.get(app)!.running);
  if (running !== undefined) return running.uuid;
  return (having.find((n) => n.uuid === placedOn) ?? having[0])?.uuid ?? null;
}

/**
 * The container (its application part, as the agent names it) whose output `drover logs
 * <name>` shows, and its node; null when no node reports one. `applications` looks an
 * application up by name; undefined: no application and no instance is called `name`.
 */
export function logsSourceOf(
  name: string,
  applications: (name: string) => Application | undefined,
  nodes: readonly ReportedNode[],
): { container: string; uuid: string | null } | undefined {
  const app = applications(name);
  if (app !== undefined && !isReplicated(app)) return { container: app.name, uuid: logsNodeOf(app.name, app.node_uuid, nodes) };
  // `web.2`: one instance of `web`.
  const one = /^(.+)\.(\d+)$/.exec(name);
  const base = app ?? (one === null ? undefined : applications(one[1]!));
  if (base === undefined || !isReplicated(base)) return undefined;
  const placed = app !== undefined ? (base.placed ?? []) : (base.placed ?? []).filter((i) => i.id === Number(one![2]));
  if (app === undefined && placed.length === 0) return undefined;
  // Live instances before draining ones; a running container before a stopped one.
  const ordered = [...placed].sort((a, b) => Number(a.draining_since !== undefined) - Number(b.draining_since !== undefined));
  let stopped: { container: string; uuid: string } | null = null;
  for (const i of ordered) {
    const container = instanceName(base.name, i.id);
    const uuid = logsNodeOf(container, i.node_uuid, nodes);
    if (uuid === null) continue;
    if (nodes.find((n) => n.uuid === uuid)!.containers.get(container)!.running) return { container, uuid };
    stopped ??= { container, uuid };
  }
  return { container: stopped?.container ?? instanceName(base.name, ordered[0]?.id ?? 1), uuid: stopped?.uuid ?? null };
}
