import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import { silentLogger, type Logger } from '#common/log.ts';
import { listLinks } from './bridge.ts';
import { exists } from './files.ts';
import { ensureImageArchive } from './images.ts';
import { ensureCa, ensureEd25519Key } from './keys.ts';
import {
  clusterPaths,
  DEFAULT_ROOT_PARENT,
  defaultRoot,
  isClusterBridge,
  isClusterPool,
  runDir,
  validateClusterName,
  validateControls,
  validateNodeCount,
  validateRoot,
  validateSubnet,
} from './layout.ts';
import { ensureClusterNet, isClusterNetLink, isClusterNetns, listNetns, removeClusterNet } from './netns.ts';
import { nodeDown, nodeRepair, nodeUp } from './node.ts';
import { listPools } from './pool.ts';
import { stopServices } from './services.ts';
import { readClusterState, writeClusterState } from './state.ts';
import { run } from './run.ts';
import type { LocalCluster, LocalClusterOptions } from './types.ts';

/**
 * Brings a local cluster up (docs/DESIGN.md §10): per node a loopback address, a zfs-fuse pool,
 * an sshd and a dockerd, started in parallel.
 *
 * A cluster of that name that is recorded (it came up once) is repaired, never replaced:
 * its pools, node ids, keys and CA are kept, and only what does not answer is started
 * again (`repairCluster`). Asked for another size, subnet or set of daemons it refuses
 * with DROVER_CLUSTER_MISMATCH — `clusterDown` first, or `fresh: true`, is how to start over.
 * Without a record, whatever an earlier run of the same name left behind (a crash before
 * it was recorded, a killed test) is cleaned first; if any node of a new cluster fails to
 * start, the whole cluster is taken down again and the first error is thrown.
 * @throws DROVER_CLUSTER_MISMATCH, DROVER_CLUSTER_STATE_INVALID (a damaged record: nothing is touched), DROVER_CLUSTER_SUBNET_IN_USE
 */
export async function clusterUp(opts: LocalClusterOptions): Promise<LocalCluster> {
  validateClusterName(opts.name);
  validateNodeCount(opts.nodes);
  if (opts.subnet !== undefined) validateSubnet(opts.subnet);
  if (opts.controls !== undefined) validateControls(opts.controls, opts.isolate ?? false);
  const root = opts.root ?? defaultRoot(opts.name);
  validateRoot(root);
  const log = (opts.log ?? silentLogger()).child({ cluster: opts.name });
  if (opts.fresh === true) await clusterDown(opts.name, root, log);
  const recorded = await readClusterState(root);
  if (recorded !== null) return repairCluster(opts, recorded, log);

  const subnet = opts.subnet ?? 0;
  const images = opts.images ?? ['busybox'];
  const docker = opts.docker ?? true;
  const isolated = opts.isolate ?? false;
  const controls = opts.controls ?? 1;
  const started = Date.now();

  const leftovers = await findLeftovers(opts.name, root);
  if (leftovers.length > 0) {
    log.warn({ leftovers }, 'earlier run found, cleaning it');
    await clusterDown(opts.name, root, log);
  }

  await claimSubnet(opts.name, root, subnet);
  const paths = clusterPaths(root);
  try {
    const [agentPublicKey] = await Promise.all([
      ensureEd25519Key(paths.agentKey, `drover-${opts.name}-agents`),
      ensureCa(paths.caCert, paths.caKey, opts.name),
      // Build missing image archives once, before the nodes load them in parallel.
      docker ? Promise.all(images.map((image) => ensureImageArchive(image, log))) : Promise.resolve(),
    ]);
    // Before any pool is mounted: the shared root that carries zfs-fuse's mounts into the nodes.
    if (isolated) await ensureClusterNet(opts.name, root, subnet);
    const indices = Array.from({ length: opts.nodes }, (_, i) => i + 1);
    const results = await Promise.allSettled(
      indices.map((index) =>
        nodeUp({
          cluster: opts.name,
          root,
          index,
          subnet,
          docker,
          ssh: opts.ssh ?? true,
          images: docker ? images : [],
          poolSizeMiB: opts.poolSizeMiB ?? 2048,
          agentPublicKey,
          isolated,
          log,
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const cluster: LocalCluster = {
      name: opts.name,
      root,
      ...(isolated ? { isolated: true } : {}),
      ...(controls > 1 ? { controls } : {}),
      nodes: results.map((r) => (r as PromiseFulfilledResult<LocalCluster['nodes'][number]>).value),
      sshClientKey: { privateKeyPath: paths.agentKey, publicKey: agentPublicKey },
      ca: { certPath: paths.caCert, keyPath: paths.caKey },
    };
    await writeClusterState(cluster);
    log.info({ nodes: opts.nodes, ms: Date.now() - started }, 'cluster up');
    return cluster;
  } catch (err) {
    log.error({ err }, 'cluster start failed, taking it down');
    await clusterDown(opts.name, root, log).catch((downErr: unknown) => log.error({ err: downErr }, 'cluster teardown failed'));
    throw err;
  }
}

/**
 * `clusterUp` on a recorded cluster: checks that it was asked for the same shape, then
 * brings every node back to its record in parallel (nodeRepair) and records the result.
 * A failure is thrown as it is: nothing is taken down.
 */
async function repairCluster(opts: LocalClusterOptions, recorded: LocalCluster, log: Logger): Promise<LocalCluster> {
  const subnet = Number(recorded.nodes[0]?.address.split('.')[2] ?? 0);
  const docker = opts.docker ?? true;
  const ssh = opts.ssh ?? true;
  const isolated = recorded.isolated ?? false;
  const differences = [
    ...(opts.isolate !== undefined && opts.isolate !== isolated ? [isolated ? 'isolated nodes' : 'nodes that are not isolated'] : []),
    ...(opts.controls !== undefined && opts.controls !== (recorded.controls ?? 1) ? [`${recorded.controls ?? 1} control service(s), not ${opts.controls}`] : []),
    ...(recorded.nodes.length !== opts.nodes ? [`${recorded.nodes.length} nodes, not ${opts.nodes}`] : []),
    ...(opts.subnet !== undefined && opts.subnet !== subnet ? [`subnet ${subnet}, not ${opts.subnet}`] : []),
    ...(recorded.nodes.some((n) => (n.dockerSocket !== null) !== docker) ? [docker ? 'no dockerd' : 'a dockerd'] : []),
    ...(recorded.nodes.some((n) => (n.ssh !== null) !== ssh) ? [ssh ? 'no sshd' : 'an sshd'] : []),
  ];
  if (differences.length > 0) {
    throw new DroverError(
      'DROVER_CLUSTER_MISMATCH',
      `the local cluster '${opts.name}' exists with ${differences.join(', ')}; it is kept as it is (its data too). ` +
        `Bring it up as it is, or take it down first to start over: drover cluster down --name ${opts.name}`,
      { detail: { cluster: opts.name, differences } },
    );
  }
  const started = Date.now();
  const paths = clusterPaths(recorded.root);
  const images = docker ? (opts.images ?? ['busybox']) : [];
  const [agentPublicKey] = await Promise.all([
    ensureEd25519Key(paths.agentKey, `drover-${opts.name}-agents`),
    ensureCa(paths.caCert, paths.caKey, opts.name),
    Promise.all(images.map((image) => ensureImageArchive(image, log))),
  ]);
  if (isolated) await ensureClusterNet(opts.name, recorded.root, subnet);
  const nodes = await Promise.all(
    recorded.nodes.map((node) =>
      nodeRepair(
        { cluster: opts.name, root: recorded.root, index: node.index, subnet, docker, ssh, images, poolSizeMiB: opts.poolSizeMiB ?? 2048, agentPublicKey, isolated, log },
        node,
      ),
    ),
  );
  const cluster: LocalCluster = { ...recorded, nodes, sshClientKey: { privateKeyPath: paths.agentKey, publicKey: agentPublicKey } };
  await writeClusterState(cluster);
  log.info({ nodes: nodes.length, ms: Date.now() - started }, 'cluster repaired');
  return cluster;
}

/**
 * Takes the cluster down and removes every trace of it: containers, dockerd and sshd
 * (by pid), pools, bridges, plugin sockets, sparse files, the state and run directories.
 * Works from the recorded state and from what it finds by name, so it also cleans a run
 * that crashed before it was recorded. Idempotent.
 */
export async function clusterDown(name: string, root?: string, log: Logger = silentLogger()): Promise<void> {
  validateClusterName(name);
  const dir = root ?? defaultRoot(name);
  validateRoot(dir);
  // drover's own processes first (plugins remove their sockets while dockerd still runs).
  await stopServices(dir, log);
  const recorded = await readClusterState(dir).catch(() => null);
  const addresses = new Map(recorded?.nodes.map((node) => [node.index, node.address]) ?? []);
  const indices = new Set<number>(addresses.keys());
  for (const thing of await findLeftovers(name, dir)) {
    const index = /(\d)$/.exec(thing)?.[1];
    if (index !== undefined) indices.add(Number(index));
  }
  const results = await Promise.allSettled(
    [...indices].map((index) => nodeDown({ cluster: name, root: dir, index, address: addresses.get(index) ?? null, log })),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  await removeClusterNet(name, dir);
  await unmountTmpfsUnder(dir);
  await rm(dir, { recursive: true, force: true });
  await rm(runDir(name), { recursive: true, force: true });
}

/**
 * Unmounts the tmpfs mounts under `dir`, deepest first: the agents' secrets directories
 * (docs/DESIGN.md §22), which outlive a stopped agent on purpose (its containers may still
 * run) and would make the removal of the cluster's directory fail with EBUSY. Only tmpfs:
 * the pools' datasets were unmounted with their pools.
 */
async function unmountTmpfsUnder(dir: string): Promise<void> {
  const mounts = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  const under = mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([, target, type]) => type === 'tmpfs' && target !== undefined && target.startsWith(`${dir}/`))
    .map(([, target]) => target!.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const target of under) await run('umount', [target], { timeoutMs: 15_000 }).catch(() => run('umount', ['-l', target], { timeoutMs: 15_000 }));
}

/** The recorded cluster, or null when none is recorded under `root`. */
export async function readCluster(name: string, root?: string): Promise<LocalCluster | null> {
  validateClusterName(name);
  return readClusterState(root ?? defaultRoot(name));
}

/**
 * Everything of cluster `name` that exists now: its state file, node directories, run
 * directory, pools and bridges. Node things end in their index digit.
 */
async function findLeftovers(name: string, root: string): Promise<string[]> {
  const found: string[] = [];
  const entries = async (path: string): Promise<string[]> => readdir(path).catch(() => [] as string[]);
  if (await exists(clusterPaths(root).state)) found.push(clusterPaths(root).state);
  for (const entry of await entries(root)) if (/^n[1-9]$/.test(entry)) found.push(`${root}/${entry}`);
  for (const entry of await entries(runDir(name))) if (/^n[1-9]$/.test(entry)) found.push(`${runDir(name)}/${entry}`);
  for (const pool of await listPools()) if (isClusterPool(name, pool)) found.push(pool);
  for (const link of await listLinks()) if (isClusterBridge(name, link) || isClusterNetLink(name, link)) found.push(link);
  for (const ns of await listNetns()) if (isClusterNetns(name, ns)) found.push(ns);
  if (found.length === 0 && (await exists(root))) found.push(root);
  return found;
}

/**
 * Records that cluster `name` uses `subnet` (`<root>/subnet`), after making sure no other
 * cluster under the default parent does: two clusters on one subnet would fight over the
 * same addresses, sshd ports and published ports.
 */
async function claimSubnet(name: string, root: string, subnet: number): Promise<void> {
  const other = (await claimedSubnets()).find((claim) => claim.subnet === subnet && claim.name !== name);
  if (other) {
    throw new DroverError(
      'DROVER_CLUSTER_SUBNET_IN_USE',
      `subnet ${subnet} is used by the local cluster '${other.name}' (take it down with: drover cluster down --name ${other.name})`,
      { detail: { subnet, cluster: other.name } },
    );
  }
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'subnet'), `${subnet}\n`);
}

/** The subnets that local clusters under the default parent claim now. */
export async function claimedSubnets(): Promise<Array<{ name: string; subnet: number }>> {
  const claims: Array<{ name: string; subnet: number }> = [];
  for (const name of await readdir(DEFAULT_ROOT_PARENT).catch(() => [] as string[])) {
    const text = (await readFile(join(DEFAULT_ROOT_PARENT, name, 'subnet'), 'utf8').catch(() => '')).trim();
    if (/^\d+$/.test(text)) claims.push({ name, subnet: Number(text) });
  }
  return claims;
}
