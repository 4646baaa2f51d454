/**
 * The proxy's kernel fast path against real nftables: in steady state connections are DNATed
 * by the kernel (the proxy never accepts them); during a hold they reach the user-space
 * listener, which holds them; after the release the kernel takes over again.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { createEngine } from '../../proxy/engine.ts';
import { createNftRules } from '../../proxy/nft-command.ts';
import { DEFAULT_FORWARDING, RoutingProxy } from '../../proxy/proxy.ts';
import { route } from '../../proxy/testing/route-server.ts';
import { connectTo, digestReply, readAll, sha256, startServer, waitFor, type TestServer } from '../../proxy/testing/sockets.ts';
import { describeWith } from '../support/require.ts';

const PROXY_HOST = '127.0.6.5';
const BACKEND_HOST = '127.0.6.6';
const TABLE = `drover_test_proxy_${process.pid}`;

function nftTable(): string | null {
  try {
    return execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

async function exchange(port: number, body: string): Promise<string> {
  const s = await connectTo(port, PROXY_HOST);
  const reply = readAll(s);
  s.end(body);
  const text = (await reply).toString();
  s.destroy();
  return text;
}

describeWith(['root', 'nft'], 'the kernel fast path', () => {
  const backends: TestServer[] = [];
  let proxy: RoutingProxy | null = null;
  afterEach(async () => {
    await proxy?.stop(100);
    proxy = null;
    for (const b of backends.splice(0)) await b.close();
    execFileSync('nft', ['-f', '-'], { input: `table ip ${TABLE} {}\ndelete table ip ${TABLE}\n` });
  });

  it('DNATs in steady state, holds in user space during a cutover and removes its table at stop', async () => {
    const a = await startServer(BACKEND_HOST, digestReply('A'));
    const b = await startServer(BACKEND_HOST, digestReply('B'));
    backends.push(a, b);
    const engine = createEngine('auto');
    const nat = createNftRules({ table: TABLE, listenHost: PROXY_HOST, log: silentLogger() });
    proxy = new RoutingProxy({ engine, listenHost: PROXY_HOST, nat, options: DEFAULT_FORWARDING, log: silentLogger() });
    const port = 21101;

    await proxy.apply({ version: 1, routes: [route('db', port, { host: BACKEND_HOST, port: a.port })] });
    expect(nftTable()).toContain(`ip daddr ${PROXY_HOST} tcp dport ${port} ct timeout set "drover_tcp" dnat to ${BACKEND_HOST}:${a.port}`);
    expect(await exchange(port, 'one')).toBe(`A:${sha256('one')}`);
    expect(engine.counts().accepted).toBe(0); // the kernel forwarded it; user space never saw it

    await proxy.apply({ version: 2, routes: [route('db', port, { host: BACKEND_HOST, port: a.port }, true, 1)] });
    expect(nftTable()).not.toContain('dnat to');
    const held = exchange(port, 'held through the cutover');
    await new Promise((r) => setTimeout(r, 200));
    expect(engine.counts().accepted).toBe(1);
    expect(proxy.status().ports[0]?.held).toBe(1);

    await proxy.apply({ version: 3, routes: [route('db', port, { host: BACKEND_HOST, port: b.port }, false, 1)] });
    expect(await held).toBe(`B:${sha256('held through the cutover')}`);
    expect(nftTable()).toContain(`dnat to ${BACKEND_HOST}:${b.port}`);
    expect(await exchange(port, 'two')).toBe(`B:${sha256('two')}`);
    expect(engine.counts().accepted).toBe(1);

    await proxy.stop(100);
    proxy = null;
    expect(nftTable()).toBeNull();
  });

  it('gives a DNATed flow a 2 s conntrack TIME_WAIT, not the host 120 s that makes reused client ports stall', async () => {
    const a = await startServer(BACKEND_HOST, digestReply('A'));
    backends.push(a);
    const nat = createNftRules({ table: TABLE, listenHost: PROXY_HOST, log: silentLogger() });
    proxy = new RoutingProxy({ engine: createEngine('auto'), listenHost: PROXY_HOST, nat, options: DEFAULT_FORWARDING, log: silentLogger() });
    const port = 21103;
    await proxy.apply({ version: 1, routes: [route('db', port, { host: BACKEND_HOST, port: a.port })] });
    expect(nftTable()).toContain('ct timeout set "drover_tcp"');

    const s = await connectTo(port, PROXY_HOST);
    const clientPort = s.localPort;
    const reply = readAll(s);
    s.end('one');
    expect((await reply).toString()).toBe(`A:${sha256('one')}`);
    s.destroy();
    // /proc/net/nf_conntrack: "ipv4 2 tcp 6 <seconds left> <state> src=… dst=… sport=… dport=…"
    const entry = (): string[] | undefined =>
      readFileSync('/proc/net/nf_conntrack', 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .find((f) => f.includes(`dst=${PROXY_HOST}`) && f.includes(`sport=${clientPort}`) && f.includes(`dport=${port}`));
    let timeWait: string[] | undefined;
    await waitFor(() => (timeWait = entry())?.[5] === 'TIME_WAIT', 5000, 'the flow in TIME_WAIT');
    expect(Number(timeWait![4])).toBeLessThanOrEqual(2);
    await waitFor(() => entry() === undefined, 5000, 'the flow gone from conntrack');
  });

  it('removes a table left behind by a proxy that died', async () => {
    execFileSync('nft', ['-f', '-'], {
      input: `table ip ${TABLE} {\n  chain output {\n    type nat hook output priority -100; policy accept;\n    ip daddr ${PROXY_HOST} tcp dport 21102 dnat to ${BACKEND_HOST}:1\n  }\n}\n`,
    });
    expect(nftTable()).toContain('dnat to');
    await createNftRules({ table: TABLE, listenHost: PROXY_HOST, log: silentLogger() }).clear();
    expect(nftTable()).toBeNull();
  });
});
