import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient } from '#common/api-client.ts';
import { nodeFlagsOf } from '#common/node-flags.ts';
import { runCli } from '../../cli/dispatch.ts';
import { useTestCluster } from '../support/cluster.ts';
import { describeWith } from '../support/require.ts';

// Two drover-control processes (a file store each) and a drover-agent that knows both, on a
// 1-node local cluster with its own dockerd and zfs-fuse pool (docs/DESIGN.md §29):
// - the second service gets the first's configuration by backup and restore;
// - the first is killed: the agent's reports and the CLI carry on through the second;
// - both are down and the agent restarts: it starts from its saved view, so its application
//   keeps answering (and is started again when it dies meanwhile);
// - the first comes back: the agent converges on what it says.
const root = resolve(import.meta.dirname, '../..');

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts drover-control on `listen`; resolves with the process and the URL it serves. */
async function startControl(dir: string, name: string, listen: string): Promise<{ proc: ResultPromise; url: string }> {
  const proc = execa('node', [join(root, 'bin/drover-control.js'), '--listen', listen, '--insecure-plain-http', '--data-dir', join(dir, name), '--node-timeout', '3'], {
    cwd: root,
    reject: false,
    stdout: 'pipe',
    stderr: { file: join(dir, `${name}.err`) },
  });
  const lines = createInterface({ input: proc.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
    lines.on('line', (line) => {
      const record = JSON.parse(line) as { msg?: string; address?: string };
      if (record.msg === 'control service started' && record.address) {
        clearTimeout(timer);
        resolve(record.address);
      }
    });
  });
  return { proc, url };
}

async function end(p: ResultPromise | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | undefined> {
  if (p === null || p.exitCode !== null) return p?.exitCode ?? undefined;
  p.kill(signal);
  return (await p).exitCode;
}

describeWith(['root', 'dockerd', 'zfs'], 'an agent and the CLI with two control services, and an agent restarted while none answers', () => {
  const cluster = useTestCluster({ nodes: 1, docker: true, ssh: false, images: ['busybox'] });
  let dir: string;
  let a: { proc: ResultPromise; url: string } | null = null;
  let b: { proc: ResultPromise; url: string } | null = null;
  let aUrl = '';
  let agent: ResultPromise | null = null;
  const node = () => cluster().nodes[0]!;
  const docker = (...args: string[]) => execa('docker', ['-H', node().dockerHost!, ...args], { timeout: 60_000 });
  const startAgent = () =>
    execa('node', [...nodeFlagsOf(join(root, 'bin/drover-agent.js')), join(root, 'bin/drover-agent.js'), '--config', join(dir, 'agent.yml')], {
      cwd: root,
      reject: false,
      stdout: { file: join(dir, 'agent.log'), append: true },
      stderr: { file: join(dir, 'agent.err'), append: true },
    });
  /** The application's answer on its published port, or null. */
  const answer = async (port: number): Promise<string | null> => {
    try {
      const r = await fetch(`http://${node().address}:${port}/index.html`, { signal: AbortSignal.timeout(3_000) });
      return r.ok ? await r.text() : null;
    } catch {
      return null;
    }
  };
  let port = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-control-outage-'));
    a = await startControl(dir, 'control-a', '127.0.0.1:0');
    aUrl = a.url;
    b = await startControl(dir, 'control-b', '127.0.0.1:0');
    await writeFile(
      join(dir, 'agent.yml'),
      [
        `control_url: [${a.url}, ${b.url}]`,
        `state_dir: ${join(dir, 'agent')}`,
        `node_uuid_file: ${join(node().stateDir, 'uuid')}`,
        `address: ${node().address}`,
        `pool: ${node().pool}`,
        `docker_socket: ${node().dockerSocket}`,
        'transport: tls',
        'tls: { port: 4524 }',
        'poll_interval_ms: 500',
        'stop_timeout_seconds: 1',
      ].join('\n'),
    );
    agent = startAgent();
  }, 120_000);

  afterAll(async () => {
    await end(agent, 'SIGKILL');
    await end(a?.proc ?? null, 'SIGKILL');
    await end(b?.proc ?? null, 'SIGKILL');
    if (dir && process.env.DROVER_KEEP_LOGS === undefined) await rm(dir, { recursive: true, force: true });
  });

  it('runs an application deployed through the first service, whose configuration the second gets by backup and restore', async () => {
    const apiA = new ApiClient({ baseUrl: a!.url });
    await until('node registered with the first', async () => (await apiA.nodes()).find((n) => n.uuid === node().uuid && n.state === 'known'));
    await apiA.createContainer({
      name: 'web',
      node_uuid: node().uuid,
      image: 'drover/busybox:latest',
      command_line: ['sh', '-c', 'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www'],
      ports: [{ internal: 8080, external: 18080 }],
      restart_policy: { name: 'always' },
    });
    const state = await until('web running', async () => (await apiA.containerStates()).find((c) => c.name === 'web' && c.running && c.published.length > 0));
    port = state.published[0]!.host_port;
    expect(await until('web answers', () => answer(port))).toBe('served\n');
    const restored = await new ApiClient({ baseUrl: b!.url }).restore({ backup: await apiA.backup() });
    expect(restored.restored.applications).toBe(1);
  });

  it("carries the agent's reports and the CLI on through the second service when the first is killed", async () => {
    const apiB = new ApiClient({ baseUrl: b!.url });
    await end(a!.proc, 'SIGKILL');
    const killedAt = Date.now();
    const seen = await until('node known to the second service', async () => (await apiB.nodes()).find((n) => n.uuid === node().uuid && n.state === 'known'), 60_000);
    process.stdout.write(`reports reached the second service ${Date.now() - killedAt} ms after the first was killed\n`);
    expect(seen.host).toBe(node().address);
    expect((await apiB.containerStates()).find((c) => c.name === 'web')?.running).toBe(true);
    let out = '';
    let err = '';
    const code = await runCli(['--control', `${aUrl},${b!.url}`, 'status', '--json'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: {},
      cwd: dir,
      sleep: async () => undefined,
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('"web"');
    expect(await answer(port)).toBe('served\n');
  });

  it('keeps the application running and answering when the agent restarts with no control service, and starts it again when it dies', async () => {
    await end(b!.proc, 'SIGTERM');
    expect(await end(agent, 'SIGTERM')).toBe(0);
    const saved = join(dir, 'agent', 'desired.json');
    expect((await stat(saved)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(saved, 'utf8')).desired.applications.map((x: { name: string }) => x.name)).toEqual(['web']);

    agent = startAgent();
    await until('saved view restored', async () => (await readFile(join(dir, 'agent.log'), 'utf8')).includes('saved desired configuration restored'), 60_000);
    // The agent's passes with the saved view leave the running application alone.
    for (let i = 0; i < 6; i++) {
      expect(await answer(port)).toBe('served\n');
      await new Promise((r) => setTimeout(r, 500));
    }
    // Killed while no control service answers: only the saved view says it should run.
    const { stdout: pid } = await docker('inspect', '--format', '{{.State.Pid}}', 'drover-web');
    process.kill(Number(pid), 'SIGKILL');
    const diedAt = Date.now();
    // Started again, docker publishes it on a new host port (the proxy learns it from the control service).
    const newPort = await until(
      'web started again',
      async () => {
        const { stdout } = await docker('inspect', '--format', '{{.State.Running}} {{.State.Pid}} {{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}', 'drover-web');
        const [running, newPid, hostPort] = stdout.trim().split(' ');
        return running === 'true' && newPid !== pid.trim() && Number(hostPort);
      },
      90_000,
    );
    expect(await until('web answers again', () => answer(newPort), 30_000)).toBe('served\n');
    process.stdout.write(`with no control service, the agent started the application again ${Date.now() - diedAt} ms after it died\n`);
  });

  it('converges on what the first service says once it is back', async () => {
    const port8 = Number(new URL(aUrl).port);
    a = await startControl(dir, 'control-a', `127.0.0.1:${port8}`);
    const apiA = new ApiClient({ baseUrl: a.url });
    await apiA.createContainer({ name: 'web2', node_uuid: node().uuid, image: 'drover/busybox:latest', command_line: ['sh', '-c', 'exec sleep 100000'] });
    const backAt = Date.now();
    await until('web2 started by the agent', async () => (await apiA.containerStates()).find((c) => c.name === 'web2' && c.running), 90_000);
    process.stdout.write(`the agent converged on the returned service ${Date.now() - backAt} ms after a change there\n`);
    expect((await apiA.containerStates()).find((c) => c.name === 'web')?.running).toBe(true);
    const saved = JSON.parse(await readFile(join(dir, 'agent', 'desired.json'), 'utf8'));
    expect(saved.desired.applications.map((x: { name: string }) => x.name).sort()).toEqual(['web', 'web2']);
  });
});
