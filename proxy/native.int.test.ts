/**
 * The native engine's own cases (docs/DESIGN.md §32): drover-proxy `--engine native` as a
 * process holding through a cutover with the relay's threads; the relay killed, or sent a line
 * it refuses, is started again while the port stays open. The engine contract, the routing
 * proxy, balance and replay suites run against it too (tcp.int.test.ts, proxy.int.test.ts,
 * balance.test.ts, replay.test.ts). Real loopback sockets on 127.0.6.4x, a real route server.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { createNativeEngine, type NativeEngine } from './tcp-native.ts';
import { runProxy as run } from './testing/proxy-process.ts';
import { RouteServer, route } from './testing/route-server.ts';
import { connectTo, digestReply, readAll, sha256, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-0000000000c4';
const HOST = '127.0.6.41';
const BACKEND_HOST = '127.0.6.42';
const PORT = 21401;

/** The relay: the proxy process's one child. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function threadsOf(pid: number): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** Per relay thread (its epoll set: listener, wake-up, two per connection), the connections it owns. */
function connectionsPerThread(relay: number): number[] {
  const owned: number[] = [];
  for (const fd of readdirSync(`/proc/${relay}/fd`)) {
    const tfds = (readFileSync(`/proc/${relay}/fdinfo/${fd}`, 'utf8').match(/^tfd:/gm) ?? []).length;
    if (tfds > 0) owned.push((tfds - 2) / 2);
  }
  return owned;
}

/** utime + stime of a process (all its threads), in clock ticks (100/s). */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function ask(port: number, host: string, text: string): Promise<string> {
  const s = await connectTo(port, host);
  const reply = readAll(s);
  s.end(text);
  const answer = (await reply).toString();
  s.destroy();
  return answer;
}

describe('drover-proxy --engine native', () => {
  let routes: RouteServer | null = null;
  const servers: TestServer[] = [];
  const clients: Socket[] = [];
  let proxy: ReturnType<typeof run> | null = null;
  let engine: NativeEngine | null = null;
  afterEach(async () => {
    for (const s of clients.splice(0)) s.destroy();
    if (proxy && proxy.child.exitCode === null) {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
    }
    proxy = null;
    await engine?.destroyAll();
    engine = null;
    await routes?.stop();
    routes = null;
    for (const s of servers.splice(0)) await s.close();
  });

  const start = async (): Promise<{ old: TestServer; fresh: TestServer; relay: number }> => {
    routes = new RouteServer();
    await routes.start();
    const old = await startServer(BACKEND_HOST, digestReply('old'));
    const fresh = await startServer(BACKEND_HOST, digestReply('new'));
    servers.push(old, fresh);
    const version = routes.publish([route('app', PORT, { host: old.host, port: old.port })]);
    proxy = run(['--control', routes.url, '--node-uuid', NODE, '--listen-host', HOST, '--engine', 'native', '--workers', '2', '--hold-deadline-ms', '20000']);
    await routes.waitForAck(NODE, version, 60_000);
    const relays = childrenOf(proxy.child.pid!);
    expect(relays).toHaveLength(1);
    return { old, fresh, relay: relays[0]! };
  };

  it('forwards in the relay threads, holds through a cutover once acknowledged, then sends the held connections to the new backend', async () => {
    const { old, fresh, relay } = await start();
    expect(threadsOf(relay)).toBe(3); // the main thread and --workers 2 relay threads
    expect(await ask(PORT, HOST, 'before')).toBe(`old:${sha256('before')}`);

    const held = routes!.publish([route('app', PORT, { host: old.host, port: old.port }, true)]);
    await routes!.waitForAck(NODE, held, 10_000);
    const accepted = old.accepted;
    const replies: Promise<Buffer>[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await connectTo(PORT, HOST);
      clients.push(s);
      replies.push(readAll(s));
      s.end(`held ${i}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(old.accepted).toBe(accepted); // none forwarded while held

    routes!.publish([route('app', PORT, { host: fresh.host, port: fresh.port })]);
    const texts = (await Promise.all(replies)).map((b) => b.toString());
    expect(texts).toEqual(texts.map((_, i) => `new:${sha256(`held ${i}`)}`));
    expect(old.accepted).toBe(accepted);
    expect(await ask(PORT, HOST, 'after')).toBe(`new:${sha256('after')}`);

    proxy!.child.kill('SIGTERM');
    expect(await proxy!.exited).toBe(0);
    await waitFor(() => childrenOf(proxy!.child.pid!).length === 0, 5_000, 'the relay to exit');
  });

  it('starts a killed relay again; a connection made while it was down waits in the open port and is served', async () => {
    const { old, relay } = await start();
    process.kill(relay, 'SIGKILL');
    // The proxy keeps the listening socket: the kernel queues this one until a relay accepts it.
    expect(await ask(PORT, HOST, 'during the restart')).toBe(`old:${sha256('during the restart')}`);
    const now = childrenOf(proxy!.child.pid!);
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(relay);
    for (let i = 0; i < 10; i++) expect(await ask(PORT, HOST, `after ${i}`)).toBe(`old:${sha256(`after ${i}`)}`);
    expect(old.accepted).toBeGreaterThanOrEqual(11);
    expect(proxy!.output()).toContain('native relay exited');
  });

  it('takes a control line the relay refuses as a crash: the relay exits 65, is started again and serves the port', async () => {
    const backend = await startServer(BACKEND_HOST, digestReply('b'));
    servers.push(backend);
    engine = createNativeEngine({ log: silentLogger(), connectTimeoutMs: 1000 });
    // What the relay hands back (none expected here) goes the same way, through the uv engine.
    const listener = await engine.listen(HOST, 0, (conn) => conn.forward({ host: BACKEND_HOST, port: backend.port }, 1000, (c) => c.destroy()));
    await listener.route!({ targets: [{ host: BACKEND_HOST, port: backend.port }], replay: false, keep: null });
    expect(await ask(listener.port, HOST, 'one')).toBe(`b:${sha256('one')}`);
    const first = engine.relay.pid;
    // An address out of range, a count that does not match, a verb without its descriptor, not JSON, too long.
    for (const bad of ['route 1 9 1 0 1 300.0.0.1:80 -1', 'route 1 9 1 0 2 127.0.0.1:80 -1', 'listen 1', '"}{', 'x'.repeat(5000)]) {
      const generation = engine.relay.generation;
      expect(engine.relay.send(bad)).toBe(true);
      await waitFor(() => engine!.relay.generation === generation + 1 && engine!.relay.pid !== undefined, 15_000, `a new relay after '${bad.slice(0, 30)}'`);
      expect(await ask(listener.port, HOST, bad.slice(0, 20))).toBe(`b:${sha256(bad.slice(0, 20))}`);
    }
    expect(engine.relay.pid).not.toBe(first);
  });

  const nativeEngine = async (): Promise<{ port: number; backend: TestServer }> => {
    const backend = await startServer(BACKEND_HOST, digestReply('b'));
    servers.push(backend);
    engine = createNativeEngine({ log: silentLogger(), connectTimeoutMs: 1000, threads: 2 });
    const listener = await engine.listen(HOST, 0, (conn) => conn.destroy());
    await listener.route!({ targets: [{ host: BACKEND_HOST, port: backend.port }], replay: false, keep: null });
    return { port: listener.port, backend };
  };

  it('spreads the connections it accepts over its threads: 40 clients opened one after another end up 20 ± 4 on each of 2 threads', async () => {
    const { port, backend } = await nativeEngine();
    for (let i = 0; i < 40; i++) clients.push(await connectTo(port, HOST));
    await waitFor(() => backend.accepted === 40, 15_000, '40 relayed connections');
    const owned = connectionsPerThread(engine!.relay.pid!);
    console.log(`connections per relay thread: ${owned.join(', ')}`);
    expect(owned).toHaveLength(2);
    expect(owned[0]! + owned[1]!).toBe(40);
    expect(Math.min(...owned)).toBeGreaterThanOrEqual(16);
  });

  it('counts its epoll batches and how long data waited in each socket, per thread, into the file DROVER_RELAY_STATS names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-relay-stats-'));
    const file = join(dir, 'stats');
    process.env.DROVER_RELAY_STATS = file;
    let port: number;
    try {
      ({ port } = await nativeEngine());
    } finally {
      delete process.env.DROVER_RELAY_STATS;
    }
    for (let i = 0; i < 20; i++) expect(await ask(port, HOST, `q${i}`)).toBe(`b:${sha256(`q${i}`)}`);
    const sum = (text: string, key: string) =>
      text
        .trim()
        .split('\n')
        .flatMap((line) => (new RegExp(` ${key}=([\\d,]+)`).exec(line)?.[1] ?? '').split(',').map(Number))
        .reduce((a, b) => a + b, 0);
    // Rewritten at most once a second: wait for a version that saw the 20 requests and their answers.
    const seen = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
    let text = '';
    try {
      await waitFor(() => sum((text = seen()), 'read_up_us') >= 20 && sum(text, 'read_down_us') >= 20, 10_000, 'the stats file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(text.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['thread=0', 'thread=1']);
    expect(sum(text, 'batch_len')).toBeGreaterThan(0);
    expect(sum(text, 'queued_us')).toBeGreaterThanOrEqual(40); // a client's and a backend's event at least per request
  });

  it('stops accepting for a moment when out of descriptors instead of polling the port hot, and serves the clients that waited once descriptors free', async () => {
    const { port, backend } = await nativeEngine();
    const relay = engine!.relay.pid!;
    // Room for two relayed connections (a client and a backend socket each), not a third: a new
    // descriptor takes the lowest free number, and the limit bounds the number.
    const open = new Set(readdirSync(`/proc/${relay}/fd`).map(Number));
    let free = 0;
    while (open.has(free)) free++;
    await execa('prlimit', ['--pid', String(relay), `--nofile=${free + 4}`]);
    const first = [await connectTo(port, HOST), await connectTo(port, HOST)];
    await waitFor(() => backend.accepted === 2, 15_000, 'two relayed connections');
    const waiting: Socket[] = [];
    for (let i = 0; i < 4; i++) waiting.push(await connectTo(port, HOST)); // the kernel completes them; accept4 says EMFILE
    clients.push(...first, ...waiting);
    await new Promise((r) => setTimeout(r, 300));
    const before = cpuTicks(relay);
    await new Promise((r) => setTimeout(r, 1_000));
    const spent = cpuTicks(relay) - before;
    console.log(`relay CPU while out of descriptors: ${spent * 10} ms in 1 s`);
    expect(spent).toBeLessThan(10); // polling the listener hot: 350 ms here before, up to a core per thread
    expect(backend.accepted).toBe(2);
    const replies = [...first, ...waiting].map((s, i) => {
      const reply = readAll(s);
      s.end(`client ${i}`);
      return reply;
    });
    const texts = (await Promise.all(replies)).map((b) => b.toString());
    expect(texts).toEqual(texts.map((_, i) => `b:${sha256(`client ${i}`)}`));
    expect(engine!.relay.pid).toBe(relay);
  });
  it('holds its process until the relay is gone when destroyed: what the owner does after destroyAll runs (the proxy logs "proxy stopped", exits 0)', async () => {
    // The relay child is unref'd; before the fix, 11 of 20 such processes exited (code 0)
    // between the relay's stderr closing and its 'exit' event, and never printed.
    const fixture = new URL('./testing/destroy-then-print.ts', import.meta.url).pathname;
    for (let i = 0; i < 6; i++) {
      const { stdout, exitCode } = await execa('node', ['--import', 'tsx', fixture], { timeout: 30_000, reject: false });
      expect({ run: i, stdout, exitCode }).toEqual({ run: i, stdout: 'after destroyAll', exitCode: 0 });
    }
  });
});
