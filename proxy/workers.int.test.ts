/**
 * drover-proxy with `--engine uv --workers 2`, as processes (the native engine runs threads instead: native.int.test.ts): the primary and its worker both accept on
 * the one listening socket; a hold is in effect in both before it is acknowledged; a worker
 * that dies is started again; a worker whose primary dies exits; SIGTERM stops both.
 * Real loopback sockets on 127.0.6.3x, a real HTTP route server.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runProxy as run } from './testing/proxy-process.ts';
import { RouteServer, route } from './testing/route-server.ts';
import { connectTo, digestReply, readAll, sha256, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-0000000000c3';
const HOST = '127.0.6.31';
const PORT = 21301;

/** The pids of the workers that went live, in order, from the primary's log. */
function livePids(output: string): number[] {
  return [...output.matchAll(/"workerPid":(\d+)[^\n]*"msg":"proxy worker live"/g)].map((m) => Number(m[1]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** TCP sockets a process holds open (listening ones included). */
function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('drover-proxy --workers 2', () => {
  let routes: RouteServer | null = null;
  const servers: TestServer[] = [];
  const clients: Socket[] = [];
  let proxy: ReturnType<typeof run> | null = null;
  afterEach(async () => {
    for (const s of clients.splice(0)) s.destroy();
    if (proxy && proxy.child.exitCode === null) {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
    }
    for (const pid of livePids(proxy?.output() ?? '')) if (alive(pid)) process.kill(pid, 'SIGKILL');
    proxy = null;
    await routes?.stop();
    for (const s of servers.splice(0)) await s.close();
  });

  const start = async (): Promise<{ old: TestServer; fresh: TestServer; worker: number }> => {
    routes = new RouteServer();
    await routes.start();
    const old = await startServer('127.0.6.32', digestReply('old'));
    const fresh = await startServer('127.0.6.33', digestReply('new'));
    servers.push(old, fresh);
    const version = routes.publish([route('app', PORT, { host: old.host, port: old.port })]);
    proxy = run(['--control', routes.url, '--node-uuid', NODE, '--listen-host', HOST, '--engine', 'uv', '--workers', '2', '--hold-deadline-ms', '20000']);
    await routes.waitForAck(NODE, version, 60_000);
    const pids = livePids(proxy.output());
    expect(pids).toHaveLength(1);
    return { old, fresh, worker: pids[0]! };
  };

  it('holds new connections in both processes once the hold is acknowledged, then forwards them to the new backend', async () => {
    const { old, fresh, worker } = await start();
    const primary = proxy!.child.pid!;
    // Traffic flows before the hold, through one process or the other.
    const s0 = await connectTo(PORT, HOST);
    const r0 = readAll(s0);
    s0.end('before');
    expect((await r0).toString()).toBe(`old:${sha256('before')}`);
    s0.destroy();

    const held = routes!.publish([route('app', PORT, { host: old.host, port: old.port }, true)]);
    await routes!.waitForAck(NODE, held, 10_000);
    const base = { primary: socketCount(primary), worker: socketCount(worker) };
    const accepted = old.accepted;
    const replies: Array<Promise<Buffer>> = [];
    // Connections until each process holds some (the kernel picks who accepts), at most 200.
    for (let i = 0; i < 200 && (socketCount(primary) <= base.primary || socketCount(worker) <= base.worker || i < 20); i++) {
      const s = await connectTo(PORT, HOST);
      clients.push(s);
      replies.push(readAll(s));
      s.end(`held ${i}`);
    }
    await waitFor(() => socketCount(primary) > base.primary && socketCount(worker) > base.worker, 5_000, 'both processes to hold connections');
    await new Promise((r) => setTimeout(r, 300));
    expect(old.accepted).toBe(accepted); // none forwarded while held, by either process

    routes!.publish([route('app', PORT, { host: fresh.host, port: fresh.port })]);
    const texts = (await Promise.all(replies)).map((b) => b.toString());
    expect(texts).toEqual(texts.map((_, i) => `new:${sha256(`held ${i}`)}`));
    expect(old.accepted).toBe(accepted);

    proxy!.child.kill('SIGTERM');
    expect(await proxy!.exited).toBe(0);
    await waitFor(() => !alive(worker), 5_000, 'the worker to exit');
  });

  it('starts a killed worker again, and a worker whose primary is killed exits by itself', async () => {
    const { old, worker } = await start();
    process.kill(worker, 'SIGKILL');
    await waitFor(() => livePids(proxy!.output()).length === 2, 15_000, 'the worker to be started again').catch((err: Error) => {
      throw new Error(`${err.message}; the proxy's output:\n${proxy!.output()}`);
    });
    const second = livePids(proxy!.output())[1]!;
    expect(second).not.toBe(worker);
    for (let i = 0; i < 20; i++) {
      const s = await connectTo(PORT, HOST);
      const r = readAll(s);
      s.end(`after ${i}`);
      expect((await r).toString()).toBe(`old:${sha256(`after ${i}`)}`);
      s.destroy();
    }
    expect(old.accepted).toBeGreaterThanOrEqual(20);

    proxy!.child.kill('SIGKILL');
    await proxy!.exited;
    await waitFor(() => !alive(second), 10_000, 'the orphaned worker to exit');
  });

  it('refuses --workers 2 with the net engine, naming the key', async () => {
    proxy = run(['--control', 'http://127.0.0.1:1', '--node-uuid', NODE, '--listen-host', HOST, '--workers', '2', '--engine', 'net']);
    expect(await proxy.exited).toBe(2);
    expect(proxy.output()).toMatch(/drover-proxy: workers: workers need the uv engine/);
  });
});
