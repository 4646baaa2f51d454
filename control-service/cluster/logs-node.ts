/**
 * Which node to ask for an application's logs (docs/DESIGN.md §27): the one whose report has
 * its container running; else, the node the configuration places it on, if that node reports
 * a container of it (stopped: its last output); else any node that reports one. Pure.
 */
import type { ObservedContainer } from '#common/model.ts';

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
