/**
 * Builders for the planner's and the loop's tests: desired configurations and observed
 * things with sensible defaults, validated through the model's own schemas.
 */
import type { AgentDesired } from '#common/channel.ts';
import { Application, Dataset, Migration, Node } from '#common/model.ts';
import type { z } from 'zod';
import type { LocalContainer } from '../plan/types.ts';
import type { ZfsDatasetInfo } from '../zfs/types.ts';

export const NODE_A = '11111111-1111-4111-8111-111111111111';
export const NODE_B = '22222222-2222-4222-8222-222222222222';
export const DS_1 = 'aaaaaaaa-0000-4000-8000-000000000001';
export const DS_2 = 'aaaaaaaa-0000-4000-8000-000000000002';
export const ADDRESS_A = '127.0.0.11';

export function node(uuid = NODE_A, host = ADDRESS_A): Node {
  return Node.parse({ uuid, host });
}

export function app(name: string, fields: Partial<z.input<typeof Application>> = {}): Application {
  return Application.parse({ name, image: 'drover/busybox:latest', node_uuid: NODE_A, ...fields });
}

export function dataset(datasetId: string, primary = NODE_A, fields: Partial<z.input<typeof Dataset>> = {}): Dataset {
  return Dataset.parse({ dataset_id: datasetId, primary, ...fields });
}

export function migration(fields: Partial<z.input<typeof Migration>> = {}): Migration {
  return Migration.parse({
    id: 'cccccccc-0000-4000-8000-000000000001',
    application: 'web',
    dataset_ids: [DS_1],
    from: NODE_A,
    to: NODE_B,
    phase: 'pre-copy',
    generation: 3,
    started_at: 0,
    updated_at: 0,
    ...fields,
  });
}

export function desired(fields: Partial<AgentDesired> = {}): AgentDesired {
  return {
    version: 1,
    node: node(),
    nodes: [node(), node(NODE_B, '127.0.0.12')],
    datasets: [],
    applications: [],
    leases: [],
    migrations: [],
    ...fields,
  };
}

export function zfsDataset(datasetId: string, fields: Partial<ZfsDatasetInfo> = {}): ZfsDatasetInfo {
  return {
    datasetId,
    name: `fakepool/drover/${datasetId}`,
    mountpoint: `/mnt/drover/${datasetId}`,
    mounted: true,
    readonly: false,
    refquota: null,
    usedBytes: 24_576,
    referencedBytes: 24_576,
    ...fields,
  };
}

export function localContainer(app: string, fields: Partial<LocalContainer> = {}): LocalContainer {
  return {
    id: `id-${app}`,
    name: `drover-${app}`,
    app,
    image: 'drover/busybox:latest',
    generation: 0,
    configHash: 'hash',
    status: 'running',
    running: true,
    exitCode: 0,
    oomKilled: false,
    startedAt: 0,
    finishedAt: null,
    mountSources: [],
    published: [],
    ipAddress: '172.17.0.2',
    health: 'unknown',
    restartCount: 0,
    consecutiveRestarts: 0,
    gate: null,
    ...fields,
  };
}
