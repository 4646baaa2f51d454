import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith, LOCAL_CLUSTER } from '../support/require.ts';

async function docker(host: string, ...args: string[]): Promise<string> {
  const { stdout } = await execa('docker', ['-H', host, ...args], { timeout: 60_000 });
  return stdout;
}

async function httpGet(url: string, deadlineMs: number): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return await res.text();
      last = new Error(`HTTP ${res.status}`);
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw last;
}

/** Sends one RESP command to redis at host:port and returns the raw reply. */
function redis(host: string, port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(5_000, () => socket.destroy(new Error('redis timed out')));
    socket.on('error', reject);
    // The userland proxy accepts, then hangs up while redis is still starting.
    socket.on('close', () => reject(new Error('redis closed the connection')));
    socket.once('data', (reply) => {
      socket.end();
      resolve(reply.toString('utf8'));
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

async function redisWhenUp(host: string, port: number, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const reply = await redis(host, port, 'PING').catch(() => '');
    if (reply === '+PONG\r\n') return;
    if (Date.now() > deadline) throw new Error(`redis on ${host}:${port} did not answer`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// A CGI script for busybox httpd: stores the query string in /data/note.txt.
const WRITE_CGI = '#!/bin/sh\necho "$QUERY_STRING" > /data/note.txt\nprintf "Content-Type: text/plain\\r\\n\\r\\nstored\\n"\n';

describeWith(LOCAL_CLUSTER, 'a local cluster node', () => {
  const cluster = useTestCluster({ nodes: 2, images: ['busybox', 'redis'] });

  it('runs a container on its own dockerd, writing into its own pool through a port published on its own address', async () => {
    const [n1, n2] = cluster().nodes;
    const dataset = `${n2!.pool}/drover/web`;
    await execa('zfs', ['create', dataset], { timeout: 60_000 });
    const { stdout: mountpoint } = await execa('zfs', ['get', '-H', '-o', 'value', 'mountpoint', dataset], { timeout: 30_000 });

    await docker(n2!.dockerHost!, 'run', '-d', '--name', 'web', '-v', `${mountpoint}:/data`, '-p', '18080:80',
      'drover/busybox:latest', 'sh', '-c',
      `mkdir -p /www/cgi-bin && printf '%s' '${WRITE_CGI}' > /www/cgi-bin/write && chmod +x /www/cgi-bin/write && exec httpd -f -p 80 -h /www`);

    expect(await httpGet(`http://${n2!.address}:18080/cgi-bin/write?written-on-n2`, 15_000)).toBe('stored\n');
    expect(await readFile(`${mountpoint}/note.txt`, 'utf8')).toBe('written-on-n2\n');

    // Published on node 2's address only, and only node 2's dockerd knows the container.
    await expect(fetch(`http://${n1!.address}:18080/`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expect((await docker(n2!.dockerHost!, 'ps', '-a', '--format', '{{.Names}}')).split('\n')).toContain('web');
    expect(await docker(n1!.dockerHost!, 'ps', '-a', '--format', '{{.Names}}')).toBe('');
  });

  it('runs the local redis image with its append-only file in the bind-mounted dataset', async () => {
    const n1 = cluster().nodes[0]!;
    const dataset = `${n1.pool}/drover/cache`;
    await execa('zfs', ['create', dataset], { timeout: 60_000 });
    const { stdout: mountpoint } = await execa('zfs', ['get', '-H', '-o', 'value', 'mountpoint', dataset], { timeout: 30_000 });
    await docker(n1.dockerHost!, 'run', '-d', '--name', 'cache', '-v', `${mountpoint}:/data`, '-p', '16379:6379', 'drover/redis:latest');
    await redisWhenUp(n1.address, 16379, 20_000);
    expect(await redis(n1.address, 16379, 'SET', 'greeting', 'hello')).toBe('+OK\r\n');
    await docker(n1.dockerHost!, 'stop', '-t', '10', 'cache');
    const files = await readdir(`${mountpoint}/appendonlydir`);
    expect(files.some((file) => file.endsWith('.incr.aof'))).toBe(true);
    const aof = await Promise.all(files.map((file) => readFile(`${mountpoint}/appendonlydir/${file}`, 'utf8')));
    expect(aof.join('')).toContain('greeting');
  });
});
