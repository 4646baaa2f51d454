/**
 * drover-proxy as a process: configuration from flags, routes from a real HTTP route server,
 * traffic through it, a clean exit on SIGTERM; a bad flag exits 2 with a message naming it.
 */
import { afterEach, expect, it, describe } from 'vitest';
import { runProxy as run } from './testing/proxy-process.ts';
import { RouteServer, route } from './testing/route-server.ts';
import { connectTo, digestReply, readAll, sha256, startServer, waitFor, type TestServer } from './testing/sockets.ts';

const NODE = '00000000-0000-4000-8000-0000000000c1';

describe('drover-proxy', () => {
  let routes: RouteServer | null = null;
  let backend: TestServer | null = null;
  afterEach(async () => {
    await routes?.stop();
    await backend?.close();
  });

  it('follows the control service, forwards, and exits 0 on SIGTERM', async () => {
    routes = new RouteServer();
    await routes.start();
    backend = await startServer('127.0.6.12', digestReply('app'));
    const version = routes.publish([route('app', 21201, { host: '127.0.6.12', port: backend.port })]);
    const proxy = run(['--control', routes.url, '--node-uuid', NODE, '--listen-host', '127.0.6.11', '--hold-deadline-ms', '5000']);
    try {
      await routes.waitForAck(NODE, version, 60_000);
      const s = await connectTo(21201, '127.0.6.11');
      const reply = readAll(s);
      s.end('through the process');
      expect((await reply).toString()).toBe(`app:${sha256('through the process')}`);
      s.destroy();
    } finally {
      proxy.child.kill('SIGTERM');
    }
    expect(await proxy.exited).toBe(0);
    expect(proxy.output()).toContain('"msg":"proxy stopped"');
  });

  it('exits 2 naming the flag when the configuration is bad', async () => {
    const proxy = run(['--control', 'http://127.0.0.1:1', '--node-uuid', 'not-a-uuid', '--listen-host', '127.0.6.11']);
    expect(await proxy.exited).toBe(2);
    await waitFor(() => proxy.output().includes('node_uuid'));
    expect(proxy.output()).toMatch(/drover-proxy: --node-uuid: node_uuid: must be a lower-case UUID/);
  });
});
