/**
 * Several real drover-control processes (bin/drover-control.js --store etcd) on one real etcd
 * started by this file (127.0.0.1, free ports, temp data, removed after): one leader; followers
 * serve configuration reads and send writes to the leader (307); kill -9 of the leader → another
 * is elected and accepts a write within 5 s; a leader SIGSTOPped past its lease and resumed
 * writes nothing after losing its leadership, as etcd's own history of the head shows
 * (docs/DESIGN.md §28).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_LEADER_LEASE_TTL_SECONDS } from '../../control-service/config.ts';
import { EtcdClient } from '../../control-service/store/etcd-client.ts';
import { startEtcd, stopEtcd, type EtcdCluster } from '../../local-cluster/etcd.ts';
import { describeWith } from '../support/require.ts';

const BIN = resolve(import.meta.dirname, '../../bin/drover-control.js');
/** The default lease (not given on the command line): a killed leader is replaced within 5 s; the renew deadline is 2/3 of it. */
const TTL_SECONDS = DEFAULT_LEADER_LEASE_TTL_SECONDS;

interface Control {
  name: string;
  proc: ChildProcess;
  base: string;
  log: string[];
}

let etcd: EtcdCluster;
let dir: string;
let client: EtcdClient;
const controls: Control[] = [];

async function startControl(name: string, prefix: string): Promise<Control> {
  const dataDir = join(dir, name);
  const proc = spawn(
    process.execPath,
    // One secrets key for the control services of one etcd prefix, as an operator copies it to each (docs/DESIGN.md §31).
    [BIN, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--insecure-plain-http', '--data-dir', dataDir, '--secrets-key', join(dir, `secrets${prefix.replace(/\W/g, '-')}.key`), '--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', prefix, '--identity', name],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DROVER_LOG_LEVEL: 'info' } },
  );
  const log: string[] = [];
  proc.stderr!.on('data', (c) => log.push(String(c)));
  const lines = createInterface({ input: proc.stdout! });
  const base = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start within 60 s: ${log.join('')}`)), 60_000);
    lines.on('line', (line) => {
      log.push(line);
      if (!line.includes('control service started')) return;
      clearTimeout(timer);
      done(JSON.parse(line).address);
    });
    proc.once('exit', (code) => fail(new Error(`${name} exited with ${code}: ${log.join('\n')}`)));
  });
  const control = { name, proc, base, log };
  controls.push(control);
  return control;
}

async function leaderOf(prefix: string, among: Control[], ms = 20_000): Promise<Control> {
  const deadline = Date.now() + ms;
  for (;;) {
    const { found } = await client.getMany([`${prefix}leader`]);
    const identity = found[0] ? (JSON.parse(found[0].value.toString()) as { identity: string }).identity : null;
    const leader = among.find((c) => c.name === identity);
    if (leader) return leader;
    if (Date.now() > deadline) throw new Error(`no leader among ${among.map((c) => c.name).join(', ')} within ${ms} ms`);
    await sleep(50);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dataset = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const NODE = '00000001-0000-4000-8000-000000000001';

async function createDataset(base: string, i: number, redirect: 'follow' | 'manual' = 'follow', timeoutMs = 5000): Promise<Response> {
  return fetch(`${base}/v1/configuration/datasets`, {
    method: 'POST',
    redirect,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataset_id: dataset(i), primary: NODE }),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

function stopAll(list: Control[]): Promise<unknown> {
  return Promise.all(
    list.map((c) => {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) return Promise.resolve();
      c.proc.kill('SIGCONT');
      c.proc.kill('SIGKILL');
      return new Promise((r) => c.proc.once('exit', r));
    }),
  );
}

describeWith(['etcd'], 'drover-control processes on one etcd', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-election-'));
    etcd = await startEtcd(join(dir, 'etcd'));
    client = new EtcdClient({ endpoints: etcd.endpoints });
  });
  afterAll(async () => {
    await stopAll(controls);
    client?.close();
    if (etcd) await stopEtcd(etcd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('elects one leader; followers serve reads and redirect writes; a killed leader is replaced and a write accepted within 5 s', async () => {
    const prefix = '/kill/';
    const group = [await startControl('k1', prefix), await startControl('k2', prefix), await startControl('k3', prefix)];
    const leader = await leaderOf(prefix, group);
    const followers = group.filter((c) => c !== leader);
    expect((await createDataset(leader.base, 1)).status).toBe(201);
    const redirected = await createDataset(followers[0]!.base, 2, 'manual');
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('location')).toBe(`${leader.base}/v1/configuration/datasets`);
    expect((await createDataset(followers[0]!.base, 2)).status).toBe(201); // fetch follows the 307
    // A follower's read shows both, from etcd.
    for (const f of followers) {
      const deadline = Date.now() + 10_000;
      let ids: string[] = [];
      while (Date.now() < deadline) {
        ids = ((await (await fetch(`${f.base}/v1/configuration/datasets`)).json()) as { dataset_id: string }[]).map((d) => d.dataset_id);
        if (ids.length === 2) break;
        await sleep(50);
      }
      expect(ids.sort()).toEqual([dataset(1), dataset(2)]);
    }

    leader.proc.kill('SIGKILL');
    const killedAt = performance.now();
    let accepted: number | null = null;
    for (let i = 3; accepted === null && performance.now() - killedAt < 20_000; i++) {
      for (const f of followers) {
        const res = await createDataset(f.base, i).catch(() => null);
        if (res?.status === 201) {
          accepted = performance.now() - killedAt;
          break;
        }
        await res?.arrayBuffer();
      }
      if (accepted === null) await sleep(50);
    }
    const next = await leaderOf(prefix, followers);
    process.stdout.write(`leader ${leader.name} killed (-9): ${next.name} elected and a write accepted after ${accepted?.toFixed(0)} ms (lease TTL ${TTL_SECONDS} s)\n`);
    expect(accepted).not.toBeNull();
    expect(accepted!).toBeLessThan(5000);
    await stopAll(group);
  });

  it('a leader stopped past its lease and resumed writes nothing after losing its leadership (etcd history)', async () => {
    const prefix = '/stop/';
    const group = [await startControl('s1', prefix), await startControl('s2', prefix), await startControl('s3', prefix)];
    const leader = await leaderOf(prefix, group);
    const others = group.filter((c) => c !== leader);
    expect((await createDataset(leader.base, 1)).status).toBe(201);
    const { revision: before } = await client.getMany([`${prefix}head`]);

    leader.proc.kill('SIGSTOP');
    // A write sent to it while stopped waits in its socket, and is handled the moment it resumes.
    // (Its deadline outlasts the stop: the lease, an election, a write and a TTL more.)
    const queued = createDataset(leader.base, 2, 'manual', 60_000).catch((err: unknown) => err as Error);
    const next = await leaderOf(prefix, others, 30_000);
    const { found } = await client.getMany([`${prefix}leader`]);
    const lostAt = found[0]!.createRevision; // the new leader's key: the old one's was gone by then
    expect((await createDataset(next.base, 3)).status).toBe(201);
    await sleep(TTL_SECONDS * 1000);
    leader.proc.kill('SIGCONT');
    const answer = await queued;
    const status = answer instanceof Response ? answer.status : String(answer);
    // It answers as a follower now (redirect to the new leader), or not the leader.
    expect([307, 503]).toContain(status);
    if (answer instanceof Response && answer.status === 307) expect(answer.headers.get('location')).toContain(next.base);
    // And it keeps quiet: writes sent to it afterwards go to the leader too.
    await sleep(2000);
    const later = await createDataset(leader.base, 4, 'manual');
    expect(later.status).toBe(307);
    expect(later.headers.get('location')).toBe(`${next.base}/v1/configuration/datasets`);

    // etcd's history of the head since the first write: who wrote each version.
    const history: { revision: number; writer: string; version: number }[] = [];
    const { revision: now } = await client.getMany([`${prefix}head`]);
    const watch = client.watchKey(`${prefix}head`, before, (kv, revision) => {
      if (kv) {
        const head = JSON.parse(kv.value.toString()) as { writer: string; version: number };
        history.push({ revision, writer: head.writer, version: head.version });
      }
    }, () => undefined);
    const deadline = Date.now() + 10_000;
    while ((history.at(-1)?.revision ?? 0) < now && Date.now() < deadline) await sleep(50);
    await watch.cancel();
    process.stdout.write(`head writes since revision ${before}: ${history.map((h) => `${h.revision}:${h.writer}@v${h.version}`).join(' ')}; leadership moved at revision ${lostAt}\n`);
    expect(history.filter((h) => h.revision > lostAt && h.writer === leader.name)).toEqual([]);
    expect(history.some((h) => h.revision > lostAt && h.writer === next.name)).toBe(true);
    await stopAll(group);
  });
});
