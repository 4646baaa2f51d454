/**
 * The sentences the plugin hands to Docker in `Err` (Docker prints them as they are), built
 * from data so that they can be tested by equality. Pure.
 *
 * Flocker's most common complaint was a Mount that failed after 120 s with "Timed out
 * waiting for dataset to mount." and nothing else; these say which node holds the data and
 * how far its move has got.
 */
import type { MigrationInfo, NodeInfo } from './control.ts';
import { formatSize } from './size.ts';

/** `this node`, `node 127.0.0.12 (1a2b3c4d)` or, when the address is unknown, `node <uuid>`. */
export function nodeName(uuid: string | null, nodes: readonly NodeInfo[], me: string): string {
  if (uuid === null) return 'no node';
  if (uuid === me) return 'this node';
  const node = nodes.find((n) => n.uuid === uuid);
  return node ? `node ${node.host} (${uuid.slice(0, 8)})` : `node ${uuid}`;
}

export function describeMigration(m: MigrationInfo): string {
  const parts = [`migration ${m.id.slice(0, 8)} in ${m.phase}`];
  if (m.round > 0) parts.push(`round ${m.round}`);
  if (m.bytes_total !== null && m.bytes_total > 0) parts.push(`${formatSize(m.bytes_sent)} of ${formatSize(m.bytes_total)} sent`);
  else if (m.bytes_sent > 0) parts.push(`${formatSize(m.bytes_sent)} sent`);
  return parts.join(', ');
}

export interface WaitSituation {
  name: string;
  datasetId: string;
  /** Desired primary. */
  primary: string;
  /** Node that has it writable now, per the agents. */
  holder: string | null;
  /** The move towards this node, if one is under way. */
  migration: MigrationInfo | null;
  waitedMs: number;
  nodes: readonly NodeInfo[];
  me: string;
}

/** Why a Mount is still waiting: the Err of a Mount that ran out of time. */
export function describeWait(s: WaitSituation): string {
  const seconds = Math.round(s.waitedMs / 1000);
  const retry = `Not ready after ${seconds} s; run the container again to keep waiting (the move goes on without it).`;
  if (s.migration) {
    const from = nodeName(s.migration.from, s.nodes, s.me);
    return `volume "${s.name}" is still moving to this node from ${from}: ${describeMigration(s.migration)}. ${retry}`;
  }
  if (s.primary !== s.me) {
    const where = nodeName(s.holder ?? s.primary, s.nodes, s.me);
    return `volume "${s.name}" is on ${where}; this node asked for it but no move has started yet. ${retry}`;
  }
  if (s.holder !== null && s.holder !== s.me) {
    return `volume "${s.name}" is being handed over from ${nodeName(s.holder, s.nodes, s.me)} to this node. ${retry}`;
  }
  return `volume "${s.name}" (dataset ${s.datasetId}) is not mounted on this node yet: waiting for this node's drover agent to create and mount it. ${retry}`;
}

export function describeInUse(name: string, holder: string, nodes: readonly NodeInfo[], me: string): string {
  return `volume "${name}" is in use on ${nodeName(holder, nodes, me)} (it holds the volume's lease); stop the containers using it there first`;
}
