/**
 * drover's namespace in Docker (docs/DESIGN.md §4): every container the agent
 * creates carries these labels, and the agent only ever touches containers that carry
 * `drover.node=<its own node uuid>`.
 */
export const LABEL_NODE = 'drover.node';
export const LABEL_APP = 'drover.app';
export const LABEL_GENERATION = 'drover.generation';
export const LABEL_CONFIG_HASH = 'drover.config-hash';
/** Compose's `container_name` of the application, when it has one: drover names containers itself. */
export const LABEL_CONTAINER_NAME = 'drover.container-name';
/** On a gated container (a migration's warm start): the gate's id, which is the migration's. */
export const LABEL_GATE = 'drover.gate';

/** Container names: `drover-<application>`. */
export function containerName(app: string): string {
  return `drover-${app}`;
}
