/** Nodes in the desired configuration: registered (and refreshed) by their agents' reports. */
import type { Desired, Node } from '#common/model.ts';
import { indexOf, replaceAt } from './desired-index.ts';

/** Adds the node, or replaces the entry with the same uuid. */
export function upsertNode(desired: Desired, node: Node): Desired {
  const at = desired.nodes.indexOf(indexOf(desired).nodes.get(node.uuid)!);
  return { ...desired, nodes: at < 0 ? [...desired.nodes, node] : replaceAt(desired.nodes, at, node) };
}
