import type { Dataset } from '#common/model.ts';
import { DroverError } from '#common/errors.ts';
import type { NodeStateAnswer as StateNode } from '#common/api.ts';

/**
 * Finds a node the way an operator names it: its uuid, a unique uuid prefix (as `drover
 * status` prints it), its address, or its `name` label.
 */
export function resolveNode(nodes: readonly StateNode[], ref: string): StateNode {
  const exact = nodes.find((n) => n.uuid === ref || n.host === ref || n.labels.name === ref);
  if (exact !== undefined) return exact;
  const prefixed = ref.length >= 4 ? nodes.filter((n) => n.uuid.startsWith(ref)) : [];
  if (prefixed.length === 1) return prefixed[0]!;
  const known = nodes.map((n) => `${n.host} (${n.uuid})`).join(', ') || 'none';
  throw new DroverError('DROVER_NODE_NOT_FOUND', `no node "${ref}"${prefixed.length > 1 ? ' (several match that prefix)' : ''}; known nodes: ${known}`, {
    detail: { node: ref },
  });
}

/** Finds a dataset by id, unique id prefix, or its `name` metadata. */
export function resolveDataset(datasets: readonly Dataset[], ref: string): Dataset {
  const live = datasets.filter((d) => !d.deleted);
  const exact = live.find((d) => d.dataset_id === ref) ?? live.filter((d) => d.metadata.name === ref);
  if (!Array.isArray(exact)) return exact;
  if (exact.length === 1) return exact[0]!;
  const prefixed = ref.length >= 4 ? live.filter((d) => d.dataset_id.startsWith(ref)) : [];
  if (exact.length === 0 && prefixed.length === 1) return prefixed[0]!;
  throw new DroverError('DROVER_DATASET_NOT_FOUND', exact.length > 1 || prefixed.length > 1 ? `several datasets match "${ref}"; give the dataset id` : `no dataset "${ref}"`, {
    detail: { dataset: ref },
  });
}
