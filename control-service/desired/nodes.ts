/**
 * Nodes in the desired configuration: registered (and refreshed) by their agents' reports,
 * cordoned and drained by the operator (`drover node cordon|uncordon|drain`).
 */
import type { Desired, Node } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';
import { findNode } from './lookups.ts';

/** Adds the node, or replaces the entry with the same uuid; an operator's cordon stays. */
export function upsertNode(desired: Desired, node: Node): Desired {
  const known = indexOf(desired).nodes.get(node.uuid);
  const at = known === undefined ? -1 : desired.nodes.indexOf(known);
  const entry: Node = node.cordon === undefined && known?.cordon !== undefined ? { ...node, cordon: known.cordon } : node;
  return { ...desired, nodes: at < 0 ? [...desired.nodes, entry] : replaceAt(desired.nodes, at, entry) };
}

/**
 * Marks the node unschedulable (`drain`: and to be emptied; the scheduler moves its
 * applications off, a bounded number at a time, and drops its replicas). Cordoning a drained
 * node again only to cordon it keeps the drain off; draining again restarts `since`, so moves
 * that failed during the previous drain are tried again. Idempotent otherwise.
 * @throws DroverError DROVER_NODE_NOT_FOUND (404).
 */
export function cordonNode(desired: Desired, uuid: string, drain: boolean, now: number): Desired {
  const node = findNode(desired, uuid);
  if (!drain && node.cordon !== undefined && !node.cordon.drain) return desired;
  const at = desired.nodes.indexOf(node);
  return { ...desired, nodes: replaceAt(desired.nodes, at, { ...node, cordon: { since: drain || node.cordon === undefined ? now : node.cordon.since, drain } }) };
}

/** Makes the node schedulable again (a drain in progress stops starting moves; running ones finish). Idempotent. */
export function uncordonNode(desired: Desired, uuid: string): Desired {
  const node = findNode(desired, uuid);
  if (node.cordon === undefined) return desired;
  const { cordon: _dropped, ...rest } = node;
  return { ...desired, nodes: replaceAt(desired.nodes, desired.nodes.indexOf(node), rest) };
}
