/**
 * The store under SIGKILL: the real control-service process (bin/drover-control.js) on a temp
 * data dir, a write loop over HTTP, killed at random moments many times. Writes go to the
 * journal, which is folded into the snapshot every few KiB, so kills land in appends and in
 * compactions. After every kill the snapshot file must parse (never torn) and every
 * acknowledged write must be there after a restart. It serves mutual TLS as a real control
 * service does, with certificates of a CA made for the test (common/cluster-ca.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caPaths, initCa, issue, issuedPaths } from '#common/cluster-ca.ts';
import { readTlsIdentity, tlsFetch, type FetchLike } from '#common/tls-client.ts';

const BIN = resolve(import.meta.dirname, '../../bin/drover-control.js');
const KILLS = 25;
/** Small, so the journal is folded into the snapshot many times during the loop (kills land in compactions too). */
const COMPACT_BYTES = 4096;
const NODE = '00000001-0000-4000-8000-000000000001';
const dataset = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;

let child: ChildProcess | null = null;
let dir = '';
let caDir = '';
let tlsFlags: string[] = [];
let fetchTls: FetchLike;

beforeAll(async () => {
  caDir = await mkdtemp(join(tmpdir(), 'drover-control-torture-ca-'));
  await initCa(caDir, 'drover torture test CA');
  const control = (await issue(caDir, { role: 'control', name: 'control', ipAddresses: ['127.0.0.1'] })).paths;
  const user = (await issue(caDir, { role: 'user', name: 'torturer' })).paths;
  tlsFlags = ['--tls-ca', caPaths(caDir).cert, '--tls-cert', control.certPath, '--tls-key', control.keyPath];
  fetchTls = tlsFetch(readTlsIdentity({ ca: caPaths(caDir).cert, cert: user.certPath, key: issuedPaths(caDir, 'user', 'torturer').keyPath }));
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
  if (caDir) await rm(caDir, { recursive: true, force: true });
});

async function start(): Promise<{ proc: ChildProcess; base: string }> {
  const proc = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', ...tlsFlags, '--data-dir', dir, '--compact-bytes', String(COMPACT_BYTES)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DROVER_LOG_LEVEL: 'info' } });
  child = proc;
  let stderr = '';
  proc.stderr!.on('data', (c) => (stderr += String(c)));
  const lines = createInterface({ input: proc.stdout! });
  const base = await new Promise<string>((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`control service did not start within 60 s: ${stderr}`)), 60_000);
    lines.on('line', (line) => {
      if (!line.includes('control service started')) return;
      clearTimeout(timer);
      resolveBase(JSON.parse(line).address);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`control service exited with ${code} before starting: ${stderr}`));
    });
  });
  if (!base.startsWith('https:')) throw new Error(`the control service serves ${base}, not HTTPS`);
  return { proc, base };
}

function exited(proc: ChildProcess): Promise<number | null> {
  return proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve(proc.exitCode) : new Promise((r) => proc.once('exit', (code) => r(code)));
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<number> {
  const response = await fetchTls(base + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  await response.arrayBuffer();
  return response.status;
}

describe('file store under SIGKILL', () => {
  it(`keeps every acknowledged write and never tears the file across ${KILLS} kills during a write loop`, { timeout: 600_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-control-torture-'));
    const created = new Set<number>();
    const deleted = new Set<number>();
    let next = 1;

    const check = async (base: string) => {
      const file = JSON.parse(await readFile(join(dir, 'desired.json'), 'utf8').catch(() => '{"format_version":1,"version":0,"desired":{}}'));
      expect(file.format_version).toBe(1);
      const response = await fetchTls(`${base}/v1/configuration/datasets`, { method: 'GET', headers: {}, body: null, signal: AbortSignal.timeout(10_000) });
      const listed = new Map(((await response.json()) as { dataset_id: string; deleted: boolean }[]).map((d) => [d.dataset_id, d]));
      for (const i of created) expect(listed.has(dataset(i)), `acknowledged dataset ${i} survived`).toBe(true);
      for (const i of deleted) expect(listed.get(dataset(i))?.deleted, `acknowledged delete of ${i} survived`).toBe(true);
    };

    for (let round = 0; round < KILLS; round++) {
      const { proc, base } = await start();
      await check(base);
      let killed = false;
      const writer = async () => {
        while (!killed) {
          const i = next++;
          try {
            if (i % 5 === 0 && created.size > 0) {
              const victim = [...created][Math.floor(Math.random() * created.size)]!;
              if ((await call(base, 'DELETE', `/v1/configuration/datasets/${dataset(victim)}`)) === 200) deleted.add(victim);
            } else if ((await call(base, 'POST', '/v1/configuration/datasets', { primary: NODE, dataset_id: dataset(i), metadata: { round: String(round) } })) === 201) {
              created.add(i);
            }
          } catch {
            return; // the process died under this request: its outcome is unknown, so it is not counted
          }
        }
      };
      const writers = Array.from({ length: 4 }, writer);
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      killed = true;
      proc.kill('SIGKILL');
      await exited(proc);
      await Promise.all(writers);
      JSON.parse(await readFile(join(dir, 'desired.json'), 'utf8').catch(() => '{}'));
    }

    const { proc, base } = await start();
    await check(base);
    expect(created.size).toBeGreaterThan(KILLS);
    proc.kill('SIGTERM');
    expect(await exited(proc)).toBe(0);
  });
});
