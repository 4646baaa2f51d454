/**
 * From a desired application to the container that runs it (pure).
 *
 * The config hash covers everything that needs a new container when it changes (image,
 * command, environment, ports, mounts, limits) and nothing that does not: the restart
 * policy and the health check are the agent's own business and apply to a running
 * container, and the generation is a fencing token, not configuration.
 */
import { createHash } from 'node:crypto';
import type { Application } from '#common/model.ts';
import { linkEnvironment } from './links.ts';
import { LABEL_APP, LABEL_CONFIG_HASH, LABEL_GENERATION, LABEL_NODE, containerName } from './labels.ts';
import type { ContainerSpec } from './types.ts';

export interface SpecInputs {
  nodeUuid: string;
  address: string;
  generation: number;
  /** dataset_id → host path of its mountpoint on this node. */
  mountpoints: ReadonlyMap<string, string>;
}

/**
 * Builds the container spec of `app`. Every volume's dataset must be in `mountpoints`
 * (the caller blocks the application otherwise); throws if one is missing.
 */
export function containerSpec(app: Application, inputs: SpecInputs): ContainerSpec {
  // Link variables point at this node's proxy, which follows the linked application.
  const envMap = { ...linkEnvironment(app, app.links, inputs.address), ...app.environment };
  const env = Object.entries(envMap)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const binds = app.volumes.map((v) => {
    const source = inputs.mountpoints.get(v.dataset_id);
    if (source === undefined) throw new Error(`no mountpoint for dataset ${v.dataset_id}`);
    return { source, target: v.mountpoint };
  });
  const ports = [...new Set(app.ports.map((p) => p.internal))].sort((a, b) => a - b);
  const body = {
    image: app.image,
    command: app.command_line ?? null,
    entrypoint: app.entrypoint ?? null,
    env,
    ports,
    hostIp: inputs.address,
    binds,
    memoryBytes: app.memory_limit ?? null,
    cpuShares: app.cpu_shares ?? null,
    swappiness: app.swappiness ?? null,
  };
  const configHash = hashOf(body);
  return {
    name: containerName(app.name),
    app: app.name,
    ...body,
    labels: {
      ...app.labels,
      [LABEL_NODE]: inputs.nodeUuid,
      [LABEL_APP]: app.name,
      [LABEL_GENERATION]: String(inputs.generation),
      [LABEL_CONFIG_HASH]: configHash,
    },
    configHash,
  };
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}
