/**
 * The world the replication e2e tests look at: a local cluster running drover's processes
 * as `drover cluster up` runs them (control service; per node an agent, a proxy and a volume
 * plugin), Redis deployed from a Compose file with `x-drover.replication`, written and read
 * through node 1's proxy; what `GET /v1/drover/replication` says; and what each node's pool
 * really holds (snapshots with guid and creation time, read with `zfs get`, not through the
 * agent). The faults live here too: a replica node down (its agent killed and its sshd cut),
 * a full pool, a file written into a replica outside drover.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ApiClient } from '#common/api-client.ts';
import type { ReplicaAnswer, ReplicationAnswer, ReplicationEvent } from '#common/api.ts';
import { systemClock } from '#common/clock.ts';
import { cliEnv, controlClient, controlUrl, servicesStatus, startServices, type LocalCluster, type LocalNode } from '../../local-cluster/index.ts';
import { RedisConnection, type Endpoint } from '../../cli/demo/redis-client.ts';
import { until } from '../migration/stack.ts';
import { childrenOf } from '../support/processes.ts';

export const MiB = 1024 * 1024;

/** A dataset's line in `GET /v1/drover/replication`, and one replica's in it. */
export type DatasetReplication = ReplicationAnswer;
export type ReplicaStatus = ReplicaAnswer;

/** What a replica line says went wrong: its last error and its problem, as one string. */
export function trouble(r: ReplicaStatus): string {
  return [r.last_error?.code, r.last_error?.message, r.problem].filter(Boolean).join(' ');
}

export interface Snapshot {
  /** The part after `@`. */
  snapshot: string;
  guid: string;
  /** Seconds since the epoch (ZFS keeps whole seconds). */
  creation: number;
  createtxg: number;
}

export interface RedisApp {
  name: string;
  datasetId: string;
  port: number;
}

export interface ReplicationSpec {
  replicas: number;
  intervalS: number;
  retention?: { primary: string; replicas: string };
}

export const RETENTION = { primary: '1x1m(keep=all) | 24x1h', replicas: '1x1m(keep=all) | 24x1h' };

const REDIS_ARGS = ['redis-server', '--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];

/** A Compose file of one Redis with a dataset and `x-drover.replication`. */
export function redisCompose(name: string, port: number, replication: ReplicationSpec | null): string {
  const r = replication;
  const retention = r?.retention ?? RETENTION;
  const x = r === null ? '' : `    x-drover:\n      replication:\n        replicas: ${r.replicas}\n        interval: ${r.intervalS}s\n        retention: { primary: "${retention.primary}", replicas: "${retention.replicas}" }\n`;
  return `services:
  ${name}:
    image: drover/redis:latest
    command: ${JSON.stringify(REDIS_ARGS)}
    ports: ["${port}:6379"]
    volumes: ["data:/data"]
    restart: always
    x-drover-healthcheck: { type: tcp, port: 6379, send: "PING\\r\\n", expect: "+PONG", interval: 1s, timeout: 2s, retries: 3 }
${x}volumes:
  data:
    driver_opts:
      size: 512M
`;
}

export class ReplicationWorld {
  readonly api: ApiClient;
  readonly url: string;

  private constructor(readonly cluster: LocalCluster) {
    this.url = controlUrl(cluster);
    this.api = controlClient(cluster);
  }

  /** drover's processes on `cluster`, every agent reporting and every proxy polling. */
  static async start(cluster: LocalCluster): Promise<ReplicationWorld> {
    await startServices(cluster);
    return new ReplicationWorld(cluster);
  }

  node(index: number): LocalNode {
    const node = this.cluster.nodes.find((n) => n.index === index);
    if (!node) throw new Error(`no node ${index}`);
    return node;
  }

  indexOf(uuid: string): number {
    const node = this.cluster.nodes.find((n) => n.uuid === uuid);
    if (!node) throw new Error(`no node ${uuid}`);
    return node.index;
  }

  /** Where node `index`'s proxy answers for `app`. */
  proxy(app: RedisApp, index = 1): Endpoint {
    return { host: this.node(index).address, port: app.port };
  }

  /** Deploys Redis on node `index` (project `<name>`), waits until it answers PONG through node 1's proxy. */
  async deployRedis(name: string, port: number, index: number, replication: ReplicationSpec | null): Promise<RedisApp> {
    await this.api.deploy({
      project: name,
      compose: { file: `${name}.yml`, text: redisCompose(name, port, replication) },
      topology: { file: 'topology.yml', text: `version: 1\nnodes:\n  "${this.node(index).address}": ["${name}"]\n` },
    });
    await until(`${name} healthy`, async () => {
      const s = await this.api.application(name);
      return s.state === 'running' && s.health === 'healthy';
    }, 180_000, 250);
    const { datasets } = await this.api.datasets();
    const dataset = datasets.find((d) => d.metadata.name === `${name}_data` && !d.deleted);
    if (!dataset) throw new Error(`no dataset ${name}_data`);
    const app = { name, datasetId: dataset.dataset_id, port };
    await until(`PONG from ${name} through n1's proxy`, () => pong(this.proxy(app)), 60_000, 250);
    return app;
  }

  /** The application's line in `GET /v1/drover/replication`. */
  async replication(app: RedisApp): Promise<DatasetReplication | null> {
    return (await this.api.replication()).find((d) => d.dataset_id === app.datasetId) ?? null;
  }

  /** Node `index`'s replica line for `app` (null: not listed). */
  async replica(app: RedisApp, index: number): Promise<ReplicaStatus | null> {
    return (await this.replication(app))?.replicas.find((r) => r.node === this.node(index).uuid) ?? null;
  }

  /** Every snapshot of `app`'s dataset in node `index`'s pool, drover's and not, oldest first. */
  async snapshots(app: RedisApp, index: number): Promise<Snapshot[]> {
    return this.snapshotsOf(this.datasetName(app, index));
  }

  /** Every snapshot of the dataset named `dataset` (a full zfs name), oldest first. */
  async snapshotsOf(dataset: string): Promise<Snapshot[]> {
    const out = await execa('zfs', ['get', '-Hp', '-d', '1', '-o', 'name,property,value', 'guid,creation,createtxg', dataset], { reject: false, timeout: 60_000 });
    if (out.exitCode !== 0) {
      if (/does not exist/.test(out.stderr)) return [];
      throw new Error(`zfs get on ${dataset}: ${out.stderr}`);
    }
    const byName = new Map<string, Partial<Snapshot>>();
    for (const line of out.stdout.split('\n')) {
      const [name, property, value] = line.split('\t');
      if (!name?.includes('@') || value === undefined) continue;
      const snap = byName.get(name) ?? { snapshot: name.slice(name.indexOf('@') + 1) };
      if (property === 'guid') snap.guid = value;
      if (property === 'creation') snap.creation = Number(value);
      if (property === 'createtxg') snap.createtxg = Number(value);
      byName.set(name, snap);
    }
    return [...byName.values()].map((s) => s as Snapshot).sort((a, b) => a.createtxg - b.createtxg);
  }

  datasetName(app: RedisApp, index: number): string {
    return `${this.node(index).pool}/drover/${app.datasetId}`;
  }

  /** A ZFS property of `app`'s dataset on node `index` (`zfs get -Hp`). */
  async property(app: RedisApp, index: number, property: string): Promise<string> {
    return (await execa('zfs', ['get', '-Hp', '-o', 'value', property, this.datasetName(app, index)], { timeout: 60_000 })).stdout.trim();
  }

  /**
   * Waits until node `replica` holds a snapshot of `app` that the primary (node `primary`)
   * has too (same guid) and that was taken after `afterMs` (epoch ms); returns it.
   */
  async replicated(app: RedisApp, replica: number, primary: number, afterMs: number, timeoutMs = 60_000): Promise<Snapshot> {
    return until(`n${replica} to hold a snapshot of ${app.name} taken after ${new Date(afterMs).toISOString()}`, async () => {
      const there = new Set((await this.snapshots(app, primary)).map((s) => s.guid));
      // Creation has whole seconds: a snapshot of the next second was surely taken after afterMs.
      return (await this.snapshots(app, replica)).reverse().find((s) => there.has(s.guid) && s.creation > Math.floor(afterMs / 1000));
    }, timeoutMs, 250);
  }

  /** A crashed agent: SIGKILL, its containers keep running. */
  killAgent(index: number): void {
    const agent = servicesStatus(this.cluster).find((s) => s.kind === 'agent' && s.node === index);
    if (agent?.pid == null) throw new Error(`the agent of n${index} does not run`);
    process.kill(agent.pid, 'SIGKILL');
  }

  /** Starts whatever of drover's processes does not run (a killed agent), until every node reports. */
  async restartServices(): Promise<void> {
    await startServices(this.cluster);
  }

  /** Cuts node `index`'s sshd and every connection it serves: nothing reaches the node's pool. */
  cutSsh(index: number): void {
    const pid = this.sshdPid(index);
    for (const child of childrenOf(pid)) process.kill(child, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
  }

  async restoreSsh(index: number): Promise<void> {
    const dir = `${this.node(index).stateDir}/sshd`;
    const child = execa('/usr/sbin/sshd', ['-D', '-f', `${dir}/sshd_config`, '-E', `${dir}/sshd.log`], { detached: true, stdio: 'ignore', reject: false });
    child.unref();
    await until(`sshd of n${index} back`, async () => {
      try {
        return this.sshdPid(index) > 0;
      } catch {
        return false;
      }
    }, 20_000);
  }

  /**
   * Fills node `index`'s pool from outside drover: a dataset of our own (`<pool>/e2e-filler`)
   * reserving all the space left, so any write elsewhere in the pool fails with ENOSPC.
   * `freePool` destroys it.
   */
  async fillPool(index: number): Promise<void> {
    const pool = this.node(index).pool;
    const filler = `${pool}/e2e-filler`;
    await execa('zfs', ['create', '-o', 'mountpoint=none', filler], { timeout: 60_000 });
    const get = async (dataset: string, property: string) => Number((await execa('zfs', ['get', '-Hp', '-o', 'value', property, dataset], { timeout: 60_000 })).stdout.trim());
    // A reservation costs a little space itself: grow it until under 16 KiB is left.
    for (let round = 0; round < 16; round++) {
      const available = await get(pool, 'available');
      if (available < 16 * 1024) return;
      const reserved = await get(filler, 'reservation');
      const set = await execa('zfs', ['set', `reservation=${reserved + available}`, filler], { reject: false, timeout: 60_000 });
      if (set.exitCode !== 0) await execa('zfs', ['set', `reservation=${reserved + Math.floor(available / 2)}`, filler], { reject: false, timeout: 60_000 });
    }
    throw new Error(`could not reserve the free space of ${pool} (${await get(pool, 'available')} bytes left)`);
  }

  async freePool(index: number): Promise<void> {
    await execa('zfs', ['destroy', `${this.node(index).pool}/e2e-filler`], { reject: false, timeout: 60_000 });
  }

  /** How `drover status` may name node `index`: its name label or its address. */
  shownAs(index: number): string {
    const node = this.node(index);
    return `(?:${node.name}|${node.address.replaceAll('.', '\\.')})`;
  }

  /**
   * Writes `file` into `app`'s copy on node `index` from outside drover, as someone with a
   * shell on that node would: readonly off, mount, write, sync, unmount.
   */
  async writeOutside(app: RedisApp, index: number, file: string, content: string): Promise<void> {
    const dataset = this.datasetName(app, index);
    await execa('zfs', ['set', 'readonly=off', dataset], { timeout: 60_000 });
    const mountpoint = await this.mounted(dataset);
    try {
      await writeFile(join(mountpoint, file), content);
      await execa('sync', [], { timeout: 60_000 });
    } finally {
      await execa('zfs', ['umount', dataset], { reject: false, timeout: 60_000 });
    }
  }

  /** Reads `file` from `app`'s copy on node `index` (mounts it for the read); null when absent. */
  async readOutside(app: RedisApp, index: number, file: string): Promise<string | null> {
    const dataset = this.datasetName(app, index);
    const mountpoint = await this.mounted(dataset);
    try {
      return await readFile(join(mountpoint, file), 'utf8').catch(() => null);
    } finally {
      await execa('zfs', ['umount', dataset], { reject: false, timeout: 60_000 });
    }
  }

  /**
   * Reads `file` from a copy kept under `<pool>/drover-diverged/` (never mounted, read-only):
   * mounted at a temporary directory for the read, then unmounted and its mountpoint put back
   * to none, as an operator inspecting it would. Null when absent.
   */
  async readKept(dataset: string, file: string): Promise<string | null> {
    const dir = await mkdtemp(join(tmpdir(), 'drover-kept-'));
    await execa('zfs', ['set', `mountpoint=${dir}`, dataset], { timeout: 60_000 });
    try {
      const mountpoint = await this.mounted(dataset);
      try {
        return await readFile(join(mountpoint, file), 'utf8').catch(() => null);
      } finally {
        await execa('zfs', ['umount', dataset], { reject: false, timeout: 60_000 });
      }
    } finally {
      await execa('zfs', ['set', 'mountpoint=none', dataset], { reject: false, timeout: 60_000 });
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async mounted(dataset: string): Promise<string> {
    const mount = await execa('zfs', ['mount', dataset], { reject: false, timeout: 60_000 });
    if (mount.exitCode !== 0 && !/already mounted/.test(mount.stderr)) throw new Error(`zfs mount ${dataset}: ${mount.stderr}`);
    return (await execa('zfs', ['get', '-H', '-o', 'value', 'mountpoint', dataset], { timeout: 60_000 })).stdout.trim();
  }

  /** Copies drover's logs of this cluster to `dir` (for a look after a failure; DROVER_KEEP_LOGS=1). */
  async keepLogs(dir: string): Promise<void> {
    await cp(join(this.cluster.root, 'services'), dir, { recursive: true, filter: (src) => !src.includes('/control/') && !src.includes('/gates/') }).catch(() => undefined);
  }

  /** `drover status` as an operator reads it. */
  async status(): Promise<string> {
    const run = await execa('node', ['bin/drover.js', 'status'], { cwd: `${import.meta.dirname}/../..`, env: { ...cliEnv(this.cluster), DROVER_LOG_LEVEL: 'warn' }, reject: false, timeout: 60_000 });
    if (run.exitCode !== 0) throw new Error(`drover status: ${run.stderr}`);
    return run.stdout;
  }

  private sshdPid(index: number): number {
    const file = `/run/drover/${this.cluster.name}/${this.node(index).name}/sshd.pid`;
    const pid = Number(readFileSync(file, 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  }
}

/**
 * Collects the control service's `replication` events until `stop`; `events` fills as they
 * come. The stream is opened at once, so an event after the call is seen.
 */
export function replicationEvents(api: ApiClient): { events: ReplicationEvent[]; stop: () => Promise<void> } {
  const events: ReplicationEvent[] = [];
  const controller = new AbortController();
  const done = (async () => {
    try {
      for await (const e of api.events({ signal: controller.signal, types: ['replication'] })) {
        if (e.type === 'replication') events.push(e.data as ReplicationEvent);
      }
    } catch {
      // ended by stop(), or the stream broke: the test reads what came
    }
  })();
  return {
    events,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

/** Samples `probe` every `everyMs` while `body` runs; returns body's value and the samples. */
export async function sampling<T, S>(probe: () => Promise<S>, everyMs: number, body: () => Promise<T>): Promise<{ value: T; samples: S[] }> {
  const samples: S[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      try {
        samples.push(await probe());
      } catch {
        // a slow or failed read is no sample
      }
      await systemClock.sleep(everyMs);
    }
  })();
  try {
    return { value: await body(), samples };
  } finally {
    stop = true;
    await loop;
  }
}

export async function pong(at: Endpoint): Promise<boolean> {
  const client = await RedisConnection.connect(at, { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 });
  try {
    return await client.ping();
  } finally {
    client.close();
  }
}

