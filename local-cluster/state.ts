import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { DroverError } from '#common/errors.ts';
import { clusterStateFile } from './layout.ts';
import type { LocalCluster } from './types.ts';

/** The cluster record (`<root>/cluster.json`), written once the cluster is up. */

const sshSchema = z.object({
  host: z.string(),
  port: z.number().int(),
  user: z.string(),
  hostKeyFingerprint: z.string().startsWith('SHA256:'),
  hostPublicKey: z.string(),
});

const nodeSchema = z.object({
  index: z.number().int().min(1).max(9),
  name: z.string(),
  uuid: z.uuid(),
  address: z.string(),
  pool: z.string(),
  stateDir: z.string(),
  dockerSocket: z.string().nullable(),
  dockerHost: z.string().nullable(),
  ssh: sshSchema.nullable(),
  pluginName: z.string(),
});

export const clusterSchema = z.object({
  name: z.string(),
  root: z.string(),
  isolated: z.boolean().optional(),
  controls: z.number().int().min(1).max(5).optional(),
  nodes: z.array(nodeSchema),
  sshClientKey: z.object({ privateKeyPath: z.string(), publicKey: z.string() }),
  ca: z.object({ certPath: z.string(), keyPath: z.string() }),
});

export async function writeClusterState(cluster: LocalCluster): Promise<void> {
  const file = clusterStateFile(cluster.root);
  await writeFile(`${file}.tmp`, `${JSON.stringify(cluster, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** The recorded cluster, or null when there is none; a damaged record is an error. */
export async function readClusterState(root: string): Promise<LocalCluster | null> {
  const file = clusterStateFile(root);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = clusterSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new DroverError('DROVER_CLUSTER_STATE_INVALID', `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
      detail: { file },
    });
  }
  return parsed.data;
}
