import { randomUUID } from 'node:crypto';
import { access, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '#common/log.ts';
import { createBridge, deleteBridge, listLinks } from './bridge.ts';
import { loadImages } from './images.ts';
import { ensureEd25519Key, fingerprintOf, publicKeyOf, writeAuthorizedKeys } from './keys.ts';
import { bridgeName, bridgeSubnet, nodeAddress, nodePaths, pluginName, poolName, PLUGIN_SOCKET_DIR } from './layout.ts';
import { clearCgroup, unmountAll } from './leftovers.ts';
import { ensureNodeNet, isolatedNodeAddress, netnsName, netnsPids, nodeExec, removeNodeNet } from './netns.ts';
import { createPool, destroyPool, importPool, listPools, removePoolFile } from './pool.ts';
import { cmdline, ownedPid, processesMentioning, spawnDaemon, terminate } from './processes.ts';
import { canConnect, pingDocker, waitReady } from './readiness.ts';
import { dockerdArgs, dockerdConfig, renderSshdConfig } from './render.ts';
import { run } from './run.ts';
import type { LocalImage, LocalNode } from './types.ts';

/** Bringing one node of a local cluster up, and taking it down from any state. */

export interface NodeUpInput {
  cluster: string;
  root: string;
  index: number;
  subnet: number;
  docker: boolean;
  ssh: boolean;
  images: LocalImage[];
  poolSizeMiB: number;
  agentPublicKey: string;
  /** The node in its own network and mount namespaces (netns.ts). */
  isolated: boolean;
  log: Logger;
}

const SSH_PORT = 22;

async function nodeUuid(file: string): Promise<string> {
  const existing = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => '',
  );
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(existing)) return existing;
  const uuid = randomUUID();
  await writeFile(file, `${uuid}\n`);
  return uuid;
}

export async function nodeUp(input: NodeUpInput): Promise<LocalNode> {
  const { cluster, root, index, subnet, log } = input;
  const paths = nodePaths(cluster, root, index);
  const address = input.isolated ? isolatedNodeAddress(subnet, index) : nodeAddress(subnet, index);
  const pool = poolName(cluster, index);
  await mkdir(paths.stateDir, { recursive: true });
  await mkdir(paths.runDir, { recursive: true });
  const uuid = await nodeUuid(paths.uuidFile);
  if (input.isolated) await ensureNodeNet(cluster, subnet, index);

  await createPool(pool, paths.poolFile, paths.poolMountpoint, input.poolSizeMiB);

  // dockerd and sshd start side by side: the two waits overlap.
  const [docker, ssh] = await Promise.all([
    input.docker ? startDockerd(input, paths, address) : Promise.resolve(null),
    input.ssh ? startSshd(input, paths, address) : Promise.resolve(null),
  ]);
  log.info({ node: `n${index}`, address, pool }, 'node started');
  return {
    index,
    name: `n${index}`,
    uuid,
    address,
    pool,
    stateDir: paths.stateDir,
    dockerSocket: docker ? paths.dockerSocket : null,
    dockerHost: docker ? `unix://${paths.dockerSocket}` : null,
    ssh,
    pluginName: pluginName(cluster, index),
  };
}

/**
 * Brings a recorded node back to what its record says without losing anything it holds:
 * its pool (imported from its file when zfs-fuse lost it; created only when the file is
 * gone), its uuid, its sshd host key; a dockerd or sshd that does not answer is ended by
 * pid if it still runs and started again on the same data root, socket and address.
 * What answers is left alone. Never destroys a pool or a file.
 */
export async function nodeRepair(input: NodeUpInput, recorded: LocalNode): Promise<LocalNode> {
  const { cluster, root, index, log } = input;
  const paths = nodePaths(cluster, root, index);
  const address = recorded.address;
  await mkdir(paths.stateDir, { recursive: true });
  await mkdir(paths.runDir, { recursive: true });
  // The record is the truth for the node's id: a lost uuid file gets the same id back.
  if ((await readFile(paths.uuidFile, 'utf8').catch(() => '')).trim() !== recorded.uuid) await writeFile(paths.uuidFile, `${recorded.uuid}\n`);
  // Namespaces, veth and plugin-dir binding as they should be; a partitioned node's link comes up again.
  if (input.isolated) await ensureNodeNet(cluster, input.subnet, index);

  if (!(await listPools()).includes(recorded.pool)) {
    if (await access(paths.poolFile).then(() => true, () => false)) {
      log.info({ node: recorded.name, pool: recorded.pool }, 'pool was not imported, importing it from its file');
      await importPool(recorded.pool, paths.poolFile);
    } else {
      log.warn({ node: recorded.name, pool: recorded.pool, file: paths.poolFile }, 'pool file gone, creating an empty pool');
      await createPool(recorded.pool, paths.poolFile, paths.poolMountpoint, input.poolSizeMiB);
    }
  }

  const [docker, ssh] = await Promise.all([
    input.docker ? repairDockerd(input, paths, address) : Promise.resolve(false),
    input.ssh ? repairSshd(input, paths, address, recorded.ssh) : Promise.resolve(null),
  ]);
  return {
    ...recorded,
    dockerSocket: docker ? paths.dockerSocket : null,
    dockerHost: docker ? `unix://${paths.dockerSocket}` : null,
    ssh,
  };
}

async function repairDockerd(input: NodeUpInput, paths: ReturnType<typeof nodePaths>, address: string): Promise<true> {
  if (await pingDocker(paths.dockerSocket)) {
    if (input.images.length > 0) await loadImages(`unix://${paths.dockerSocket}`, input.images, input.log);
    return true;
  }
  // info, not warn: `drover cluster up` logs to stdout at warn, and its output is the node table.
  input.log.info({ node: `n${input.index}` }, 'dockerd did not answer, starting it again');
  const hung = ownedPid(paths.dockerPidFile, paths.dockerDataRoot);
  if (hung !== null) await terminate(hung);
  // A killed dockerd leaves its userland proxies holding the node's published ports; the
  // new one restarts the containers and needs them.
  await Promise.all(dockerProxiesOn(address).map((pid) => terminate(pid, 5_000)));
  // Its managed containerd can outlive it without answering, and the new dockerd then gives up
  // ("timeout waiting for containerd to start"; seen twice in five test runs): stop it, so
  // the new dockerd starts its own. The containers' shims keep them running meanwhile.
  await Promise.all(orphanedContainerd(paths.dockerExecRoot).map((pid) => terminate(pid, 10_000)));
  // Pid files of the dead: pids are recycled fast on a busy machine, and a dockerd that finds a
  // live process under its own or its containerd's old pid waits for it and gives up.
  await rm(paths.dockerPidFile, { force: true });
  await rm(join(paths.dockerExecRoot, 'containerd', 'containerd.pid'), { force: true });
  if ((await listLinks(dockerNetns(input))).includes(bridgeName(input.cluster, input.index))) return startDockerd(input, paths, address, { bridgeExists: true });
  return startDockerd(input, paths, address);
}

async function repairSshd(input: NodeUpInput, paths: ReturnType<typeof nodePaths>, address: string, recorded: LocalNode['ssh']): Promise<LocalNode['ssh']> {
  if (recorded !== null && (await canConnect(address, SSH_PORT))) return recorded;
  input.log.info({ node: `n${input.index}` }, 'sshd did not answer, starting it again');
  const hung = ownedPid(paths.sshPidFile, paths.sshConfig);
  if (hung !== null) await terminate(hung, 5_000);
  return startSshd(input, paths, address);
}

async function startDockerd(input: NodeUpInput, paths: ReturnType<typeof nodePaths>, address: string, options = { bridgeExists: false }): Promise<true> {
  const bridge = bridgeName(input.cluster, input.index);
  const net = bridgeSubnet(input.subnet, input.index);
  if (!options.bridgeExists) await createBridge(bridge, net.cidr, net.network, dockerNetns(input));
  await mkdir(paths.dockerDataRoot, { recursive: true });
  await mkdir(paths.dockerExecRoot, { recursive: true });
  await writeFile(paths.dockerConfig, dockerdConfig(paths));
  const pid = spawnDaemon(...asNode(input, 'dockerd', dockerdArgs({ cluster: input.cluster, node: `n${input.index}`, address, bridge, paths })), paths.dockerLog);
  await waitReady(`dockerd of n${input.index}`, pid, () => pingDocker(paths.dockerSocket), paths.dockerLog, 60_000);
  if (input.images.length > 0) await loadImages(`unix://${paths.dockerSocket}`, input.images, input.log);
  return true;
}

async function startSshd(input: NodeUpInput, paths: ReturnType<typeof nodePaths>, address: string): Promise<LocalNode['ssh']> {
  await mkdir(paths.sshDir, { recursive: true, mode: 0o700 });
  await ensureEd25519Key(paths.sshHostKey, `drover-${input.cluster}-n${input.index}`);
  await writeAuthorizedKeys(paths.sshAuthorizedKeys, input.agentPublicKey, poolName(input.cluster, input.index));
  await writeFile(paths.sshConfig, renderSshdConfig(address, SSH_PORT, paths));
  // sshd's privilege-separation directory; Debian's init script creates it, we have none.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const pid = spawnDaemon(...asNode(input, '/usr/sbin/sshd', ['-D', '-f', paths.sshConfig, '-E', paths.sshLog]), paths.sshLog);
  await waitReady(`sshd of n${input.index} on ${address}:${SSH_PORT}`, pid, () => canConnect(address, SSH_PORT), paths.sshLog, 20_000);
  return {
    host: address,
    port: SSH_PORT,
    user: 'root',
    hostKeyFingerprint: await fingerprintOf(paths.sshHostKey),
    hostPublicKey: await publicKeyOf(paths.sshHostKey),
  };
}

/** The network namespace of an isolated node's docker bridge (undefined: the root's). */
function dockerNetns(input: NodeUpInput): string | undefined {
  return input.isolated ? netnsName(input.cluster, input.index) : undefined;
}

/** A program run as a process of the node: inside its namespaces when it is isolated (nsenter execs it, same pid). */
function asNode(input: NodeUpInput, command: string, args: string[]): [string, string[]] {
  if (!input.isolated) return [command, args];
  const [nsenter, ...prefix] = nodeExec(input.cluster, input.index);
  return [nsenter!, [...prefix, command, ...args]];
}

export interface NodeDownInput {
  cluster: string;
  root: string;
  index: number;
  /** Known from the state file; lets leftover docker-proxy processes be found. */
  address: string | null;
  log: Logger;
}

/**
 * Takes node `index` down from whatever state it is in (running, half-started, crashed):
 * containers removed, dockerd and sshd ended by pid, leftover processes and mounts of its
 * paths cleared, pool destroyed, bridge deleted, plugin socket and files removed.
 * Idempotent.
 */
export async function nodeDown(input: NodeDownInput): Promise<void> {
  const { cluster, root, index, log } = input;
  const paths = nodePaths(cluster, root, index);

  const dockerd = ownedPid(paths.dockerPidFile, paths.dockerDataRoot);
  if (dockerd !== null) {
    await removeAllContainers(`unix://${paths.dockerSocket}`, log);
    if (!(await terminate(dockerd))) log.warn({ pid: dockerd }, 'dockerd did not exit');
  }
  const sshd = ownedPid(paths.sshPidFile, paths.sshConfig);
  if (sshd !== null) await terminate(sshd, 5_000);

  // Whatever a crash left: managed containerd, shims, a daemon whose pid file was lost,
  // and the userland proxies publishing on this node's address.
  const strays = processesMentioning([paths.stateDir + '/', paths.runDir + '/']);
  if (input.address !== null) strays.push(...dockerProxiesOn(input.address));
  await Promise.all(strays.map((pid) => terminate(pid, 5_000)));
  await clearCgroup(paths.cgroupParent, log);
  // An isolated node: whatever still runs in its network namespace, then the namespaces.
  await Promise.all((await netnsPids(cluster, index)).map((pid) => terminate(pid, 5_000)));
  await removeNodeNet(cluster, index, log);
  await unmountAll([paths.runDir], log);

  const pool = poolName(cluster, index);
  if ((await listPools()).includes(pool)) await destroyPool(pool, log);
  await unmountAll([paths.stateDir], log);
  await deleteBridge(bridgeName(cluster, index));
  // Both places dockerd looks for a plugin socket (Docker 20.10: <dir>/<name>.sock and <dir>/<name>/<name>.sock).
  const plugin = pluginName(cluster, index);
  await rm(join(PLUGIN_SOCKET_DIR, `${plugin}.sock`), { force: true });
  await rm(join(PLUGIN_SOCKET_DIR, plugin, `${plugin}.sock`), { force: true });
  await rmdir(join(PLUGIN_SOCKET_DIR, plugin)).catch(() => undefined);
  await removePoolFile(paths.poolFile);
  await rm(paths.stateDir, { recursive: true, force: true });
  await rm(paths.runDir, { recursive: true, force: true });
}

function dockerProxiesOn(address: string): number[] {
  return processesMentioning(['docker-proxy']).filter((pid) => {
    const args = cmdline(pid) ?? [];
    const at = args.indexOf('-host-ip');
    return args[0]?.endsWith('docker-proxy') === true && at >= 0 && args[at + 1] === address;
  });
}

async function removeAllContainers(dockerHost: string, log: Logger): Promise<void> {
  const listed = await run('docker', ['-H', dockerHost, 'ps', '-aq'], { reject: false, timeoutMs: 30_000 });
  const ids = listed.stdout.split('\n').filter((id) => id.length > 0);
  if (ids.length === 0) return;
  const removed = await run('docker', ['-H', dockerHost, 'rm', '-f', '-v', ...ids], { reject: false, timeoutMs: 120_000 });
  if (removed.exitCode !== 0) log.warn({ dockerHost, stderr: removed.stderr }, 'containers not all removed');
}

/** containerd daemons (not their shims) started for the dockerd whose exec root is `execRoot`. */
function orphanedContainerd(execRoot: string): number[] {
  return processesMentioning([`${execRoot}/containerd/`]).filter((pid) => basename(cmdline(pid)?.[0] ?? '') === 'containerd');
}
