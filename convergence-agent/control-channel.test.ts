import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isDroverError } from '#common/errors.ts';
import { HttpControlChannel } from './control-channel.ts';
import { NODE_A, desired } from './testing/fixtures.ts';

// A real HTTP server on 127.0.0.1 standing in for the control service.
let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  if (server) await new Promise((r) => server!.close(r));
  server = null;
});

async function serve(handler: (url: URL, body: string) => [number, unknown]): Promise<string> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const [status, answer] = handler(new URL(req.url!, 'http://x'), body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('HTTP control channel', () => {
  it('long-polls with after and wait_ms, and omits after on the first call', async () => {
    const seen: string[] = [];
    const url = await serve((u) => {
      seen.push(u.pathname + u.search);
      return [200, desired({ version: 7 })];
    });
    const channel = new HttpControlChannel(url);
    expect((await channel.waitForDesired(NODE_A, null, 1000)).version).toBe(7);
    await channel.waitForDesired(NODE_A, 7, 1000);
    expect(seen).toEqual([`/v1/drover/agents/${NODE_A}/desired?wait_ms=1000`, `/v1/drover/agents/${NODE_A}/desired?after=7&wait_ms=1000`]);
  });

  it('refuses an answer that does not match the channel schema, naming the path', async () => {
    const url = await serve(() => [200, { ...desired(), version: 'seven' }]);
    const err = await new HttpControlChannel(url).waitForDesired(NODE_A, null, 1000).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_BAD_ANSWER')).toBe(true);
    expect((err as Error).message).toMatch(/version: /);
  });

  it('says the control service is unreachable when nothing listens', async () => {
    const url = await serve(() => [200, {}]);
    server!.close();
    server = null;
    const err = await new HttpControlChannel(url, 500).waitForDesired(NODE_A, null, 100).catch((e: unknown) => e);
    expect(isDroverError(err, 'DROVER_CONTROL_UNREACHABLE')).toBe(true);
  });
});
