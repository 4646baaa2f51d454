/**
 * A control service listening on 127.0.0.1 over mutual TLS, with a cluster CA of its own in
 * a temp directory (common/cluster-ca.ts, as `drover ca` makes it): a user `alice`, nodes
 * `n1`, `n2`, `n3`, and a user of another CA (`mallory`). Raw requests as any of them, or
 * with no certificate. For tests only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { initCa, issue, issuedPaths, caPaths } from '#common/cluster-ca.ts';
import { readTlsIdentity, type TlsIdentity } from '#common/tls-client.ts';
import { silentLogger } from '#common/log.ts';
import { FakeClock } from '#common/testing/fake-clock.ts';
import { buildApp } from '../app.ts';
import { Control } from '../control.ts';
import { RevokedList, serverTlsOptions } from '../http/tls.ts';
import { MemoryConfigStore } from '../store/memory-store.ts';
import { HARNESS_EPOCH } from './harness.ts';

export type Caller = 'alice' | 'n1' | 'n2' | 'n3' | 'mallory' | 'nobody' | 'revoked';

export interface Answer {
  status: number;
  body: unknown;
}

export interface TlsHarness {
  url: string;
  dir: string;
  control: Control;
  app: FastifyInstance;
  revoked: RevokedList;
  identity(caller: Exclude<Caller, 'nobody'>): TlsIdentity;
  /** One request as `caller`; a connection refused at TLS rejects with the error. */
  send(caller: Caller, method: string, path: string, body?: unknown): Promise<Answer>;
  close(): Promise<void>;
}

export async function tlsHarness(): Promise<TlsHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'drover-tls-'));
  const caDir = join(dir, 'ca');
  await initCa(caDir, 'drover test cluster CA');
  await issue(caDir, { role: 'control', name: 'control', ipAddresses: ['127.0.0.1'] });
  for (const name of ['n1', 'n2', 'n3']) await issue(caDir, { role: 'node', name });
  await issue(caDir, { role: 'user', name: 'alice' });
  await issue(caDir, { role: 'user', name: 'revoked' });
  const otherDir = join(dir, 'other-ca');
  await initCa(otherDir, 'someone else CA');
  await issue(otherDir, { role: 'user', name: 'mallory' });

  const ids = new Map<string, TlsIdentity>();
  for (const [name, role] of [['alice', 'user'], ['revoked', 'user'], ['n1', 'node'], ['n2', 'node'], ['n3', 'node']] as const) {
    const p = issuedPaths(caDir, role, name);
    ids.set(name, readTlsIdentity({ ca: caPaths(caDir).cert, cert: p.certPath, key: p.keyPath }));
  }
  const m = issuedPaths(otherDir, 'user', 'mallory');
  // mallory trusts our CA (so her side of the handshake is not what fails) but holds another's certificate.
  ids.set('mallory', { ...readTlsIdentity({ ca: caPaths(otherDir).cert, cert: m.certPath, key: m.keyPath }), ca: ids.get('alice')!.ca });

  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger(), clock: new FakeClock(HARNESS_EPOCH), nodeTimeoutMs: 15_000, seed: 7 });
  await control.start();
  const revoked = new RevokedList(caPaths(caDir).revoked, silentLogger());
  const controlPaths = issuedPaths(caDir, 'control', 'control');
  const app = buildApp({ control, log: silentLogger(), version: '0.0.0-test', https: serverTlsOptions({ ca: caPaths(caDir).cert, cert: controlPaths.certPath, key: controlPaths.keyPath }), revoked });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  const send = (caller: Caller, method: string, path: string, body?: unknown): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const id = caller === 'nobody' ? { ca: ids.get('alice')!.ca } : ids.get(caller)!;
      const text = body === undefined ? undefined : JSON.stringify(body);
      // A new connection per request (agent: false), so each one is a handshake of its own.
      const req = request(url + path, { method, agent: false, ...id, headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => {
          let parsed: unknown = data;
          try {
            parsed = data === '' ? undefined : JSON.parse(data);
          } catch {
            // an event stream, say
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        // An event stream never ends: its status is enough.
        if ((res.headers['content-type'] ?? '').includes('text/event-stream')) {
          resolve({ status: res.statusCode ?? 0, body: undefined });
          res.destroy();
        }
      });
      req.on('error', reject);
      req.end(text);
    });

  return {
    url,
    dir,
    control,
    app,
    revoked,
    identity: (caller) => ids.get(caller)!,
    send,
    close: async () => {
      revoked.stop();
      await app.close();
      await control.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
