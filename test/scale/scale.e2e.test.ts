import { execa } from 'execa';
import { request } from 'node:http';
import { beforeAll, expect, it } from 'vitest';
import type { ApiClient } from '#common/api-client.ts';
import { tlsFetch } from '#common/tls-client.ts';
import { readFile } from 'node:fs/promises';
import { controlClient, metricsAddress, operatorTls, servicesStatus, startServices, type LocalNode } from '../../local-cluster/index.ts';
import { killNode } from '../failover/kill-node.ts';
import { until } from '../migration/stack.ts';
import { useTestCluster } from '../support/cluster.ts';
import { LOCAL_CLUSTER, describeWith } from '../support/require.ts';

// Several instances balanced by the proxies (docs/DESIGN.md §30) on a 3-node local cluster
// running drover's real processes: a 3-instance busybox httpd spread over the 3 nodes,
// reached through every node's proxy; one instance's container killed under a steady
// client; scaled 3 → 5 → 2; a rolling update under the client; a global service; a stop-first
// update to a broken image rolled back under the client; a single application's update (stop,
// start) held by the proxies under the client; a node killed (its instance replaced).
const LONG = 420_000;
const PORT = 18_080;

/**
 * Each instance answers its container's hostname and the VERSION it was given. httpd runs as
 * pid 1, which ignores SIGTERM: with Compose's default grace every stop of an instance would
 * wait 10 s (and hold up its node's other changes meanwhile) — waiting that is not what these
 * cases test, hence `stop_grace_period: 1s`. A long stop keeping the node's reports going is
 * convergence-agent/loop.test.ts's.
 */
const compose = (replicas: number, version: string, tag = 'latest') => `services:
  web:
    image: drover/busybox:${tag}
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && env | grep ^VERSION= >> /www/index.html && exec httpd -f -p 8080 -h /www"]
    environment: { VERSION: "${version}" }
    ports: ["${PORT}:8080"]
    stop_grace_period: 1s
    x-drover-healthcheck: { type: http, port: 8080, path: /, interval: 1s, timeout: 2s, retries: 2 }
    deploy:
      replicas: ${replicas}
      update_config: { parallelism: 1, order: start-first }
`;

/** v3 is broken: its httpd listens where the health check does not look (a bad new image). */
const BROKEN = `services:
  web:
    image: drover/busybox:v2
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8081 -h /www"]
    environment: { VERSION: "v3" }
    ports: ["${PORT}:8080"]
    stop_grace_period: 1s
    x-drover-healthcheck: { type: http, port: 8080, path: /, interval: 1s, timeout: 2s, retries: 2 }
    deploy:
      replicas: 3
      update_config: { parallelism: 1, order: stop-first, failure_action: rollback, monitor: 8s }
`;

/** A single application (no `deploy.replicas`): updated by stopping and starting its container, its connections held meanwhile. */
const SINGLE_PORT = 18_081;
const SINGLE = (version: string) => `services:
  single:
    image: drover/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && env | grep ^VERSION= > /www/index.html && exec httpd -f -p 8080 -h /www"]
    environment: { VERSION: "${version}" }
    ports: ["${SINGLE_PORT}:8080"]
    stop_grace_period: 1s
    x-drover-healthcheck: { type: http, port: 8080, path: /, interval: 1s, timeout: 2s, retries: 2 }
`;

const GLOBAL = `services:
  probe:
    image: drover/busybox:latest
    command: ["sleep", "3600"]
    deploy: { mode: global }
`;

/** One GET on a fresh connection (no keep-alive: each request is balanced on its own). */
function get(host: string, timeoutMs = 10_000, port = PORT): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** A client sending one request after another until stopped: what it got, and every failure. */
function steadyClient(host: string, port = PORT, timeoutMs = 10_000): { stop: () => Promise<{ ok: number; failed: string[]; bodies: string[]; longestMs: number; slow: string[] }> } {
  let running = true;
  // slow: the requests over 1 s or failed, with their wall-clock start (to read beside the services' logs).
  const result = { ok: 0, failed: [] as string[], bodies: [] as string[], longestMs: 0, slow: [] as string[] };
  const loop = (async () => {
    while (running) {
      const [began, at] = [performance.now(), new Date().toISOString()];
      try {
        const body = await get(host, timeoutMs, port);
        result.bodies.push(body);
        result.longestMs = Math.max(result.longestMs, performance.now() - began);
        result.ok++;
        if (performance.now() - began > 1_000) result.slow.push(`${at} ${Math.round(performance.now() - began)} ms ${body.split(/\s/).at(-1)}`);
      } catch (err) {
        result.failed.push((err as Error).message);
        result.slow.push(`${at} ${Math.round(performance.now() - began)} ms ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}

describeWith(LOCAL_CLUSTER, 'several instances balanced by the proxies (3-node local cluster)', () => {
  const cluster = useTestCluster({ nodes: 3, images: ['busybox'], poolSizeMiB: 256 });
  let api: ApiClient;
  const node = (i: number): LocalNode => cluster().nodes.find((n) => n.index === i)!;
  const deploy = (text: string, project = 'scale') => api.deploy({ project, compose: { file: 'compose.yml', text }, topology: { file: 'topology.yml', text: 'version: 1\nnodes: {}\n' } });

  /** The instances of `app` that run (healthy when checked), not draining, once there are `n` and `ok` says yes. */
  async function instancesRunning(app: string, n: number, ok: (i: { id: number; node_uuid: string; revision: number }[]) => boolean = () => true, timeoutMs = 180_000) {
    return until(`${n} instances of ${app} to run`, async () => {
      const status = await api.application(app);
      const all = status.instances ?? [];
      const live = all.filter((i) => !i.draining && i.state === 'running' && (i.health === 'healthy' || app !== 'web'));
      return live.length === n && all.length === n && ok(live) && live;
    }, timeoutMs, 250);
  }

  /** Requests through node i's proxy until every one of `expected` answered (a route lags a report): counts by instance. */
  async function countThrough(i: number, expected: number, requests = 60): Promise<Map<string, number>> {
    return until(`node ${i}'s proxy to reach ${expected} instances`, async () => {
      const counts = new Map<string, number>();
      for (let k = 0; k < requests; k++) {
        const host = (await get(node(i).address)).split(/\s/)[0]!;
        counts.set(host, (counts.get(host) ?? 0) + 1);
      }
      return counts.size === expected && counts;
    }, 60_000, 500);
  }

  /** What node i's proxy counts as replayed (docs/DESIGN.md §30), read from its /metrics. */
  async function replayed(i: number): Promise<number> {
    const url = `https://${metricsAddress(cluster(), 'proxy', node(i))}/metrics`;
    const text = await (await tlsFetch(operatorTls(cluster()))(url, { method: 'GET', headers: {}, body: null, signal: AbortSignal.timeout(10_000) })).text();
    return [...text.matchAll(/^drover_proxy_connections_total\{[^}]*event="replayed"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  }

  beforeAll(async () => {
    await startServices(cluster());
    api = controlClient(cluster());
    await deploy(compose(3, 'v1'));
  }, LONG);

  it('spreads three instances over the three nodes, and every node\'s proxy reaches all three', async () => {
    const live = await instancesRunning('web', 3);
    expect(new Set(live.map((i) => i.node_uuid)).size).toBe(3);
    for (const i of [1, 2, 3]) {
      const counts = await countThrough(i, 3);
      console.log(`through node ${i}'s proxy, requests per instance: ${[...counts.values()].join(', ')}`);
      for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(10); // round robin: 20 each of 60
    }
  }, LONG);

  // A request in flight on the killed container at the instant of the kill is replayed by the
  // proxy on another instance (a GET, nothing answered yet: docs/DESIGN.md §30, "Replay").
  it('fails no request when one instance\'s container is killed, the client retrying nothing, and starts it again', async () => {
    const victim = (await instancesRunning('web', 3))[0]!;
    const on = cluster().nodes.find((n) => n.uuid === victim.node_uuid)!;
    // Three clients at once, so that a request is more likely in flight on the victim at the kill.
    const clients = [1, 2, 3].map(() => steadyClient(node(1).address));
    await new Promise((r) => setTimeout(r, 1_000));
    const docker = ['-H', `unix://${on.dockerSocket}`];
    const killedAt = Date.now();
    const name = `drover-web.${victim.id}`;
    await execa('docker', [...docker, 'kill', name]);
    await until('the killed instance to be started again', async () => {
      const r = await execa('docker', [...docker, 'inspect', '-f', '{{.State.Running}} {{.State.StartedAt}}', name], { reject: false });
      return r.stdout.startsWith('true') && Date.parse(r.stdout.split(' ')[1]!) > killedAt - 1_000;
    }, 120_000, 250);
    await instancesRunning('web', 3);
    const all = await Promise.all(clients.map((c) => c.stop()));
    const seen = { ok: all.reduce((n, r) => n + r.ok, 0), failed: all.flatMap((r) => r.failed) };
    console.log(`3 steady clients over the kill: ${seen.ok} requests, ${seen.failed.length} failed (${seen.failed.join(', ')}); node 1's proxy replayed ${await replayed(1)} connection(s)`);
    expect(seen.failed).toEqual([]);
    expect(seen.ok).toBeGreaterThan(20);
  }, LONG);

  it('scales 3 → 5 → 2 with no failed request, removing the newest instances', async () => {
    const client = steadyClient(node(2).address);
    await deploy(compose(5, 'v1'));
    const five = await instancesRunning('web', 5);
    await countThrough(2, 5, 100);
    await deploy(compose(2, 'v1'));
    const two = await instancesRunning('web', 2);
    const seen = await client.stop();
    console.log(`steady client over 3 → 5 → 2: ${seen.ok} requests, ${seen.failed.length} failed`);
    expect(seen.failed).toEqual([]);
    const ids = (l: { id: number }[]) => l.map((i) => i.id).sort((a, b) => a - b);
    expect(ids(two)).toEqual(ids(five).slice(0, 2));
    await countThrough(3, 2);
  }, LONG);

  it('rolls a new image out under a steady client: no failed request, every instance on the new image', async () => {
    await deploy(compose(3, 'v1'));
    await instancesRunning('web', 3);
    // The "new image": the same bytes under another tag, on every node's dockerd.
    for (const n of cluster().nodes) await execa('docker', ['-H', `unix://${n.dockerSocket}`, 'tag', 'drover/busybox:latest', 'drover/busybox:v2']);
    const client = steadyClient(node(3).address);
    await new Promise((r) => setTimeout(r, 1_000));
    await deploy(compose(3, 'v2', 'v2'));
    await until('the rolling update to finish', async () => {
      const status = await api.application('web');
      const live = (status.instances ?? []).filter((i) => !i.draining);
      return status.rollout === undefined && live.length === 3 && (status.instances ?? []).length === 3 && live.every((i) => i.revision === live[0]!.revision && i.state === 'running' && i.health === 'healthy') && live[0]!.revision > 0;
    }, 240_000, 250);
    await until('every answer to be v2', async () => {
      for (let k = 0; k < 12; k++) if (!(await get(node(3).address)).endsWith('v2')) return false;
      return true;
    }, 30_000, 250);
    const names = new Set(((await api.application('web')).instances ?? []).map((i) => `web.${i.id}`));
    const images = (await api.containerStates()).filter((c) => names.has(c.name)).map((c) => c.image);
    expect(images).toEqual(['drover/busybox:v2', 'drover/busybox:v2', 'drover/busybox:v2']);
    const seen = await client.stop();
    const v1 = seen.bodies.filter((b) => b.endsWith('v1')).length;
    console.log(`steady client over the rolling update: ${seen.ok} requests (${v1} v1, ${seen.ok - v1} v2), ${seen.failed.length} failed`);
    expect(seen.failed).toEqual([]);
    expect(seen.bodies.at(-1)).toMatch(/VERSION=v2$/);
  }, LONG);

  it('runs a global service once on every node', async () => {
    await deploy(GLOBAL, 'agents');
    const live = await instancesRunning('probe', 3);
    expect(new Set(live.map((i) => i.node_uuid)).size).toBe(3);
  }, LONG);

  it('rolls a broken image back (stop-first, failure_action: rollback) under a steady client: no failed request, every instance back on v2', async () => {
    const client = steadyClient(node(2).address);
    await new Promise((r) => setTimeout(r, 1_000));
    await deploy(BROKEN);
    const rolledBack = await until('the rollout to be rolled back', async () => {
      const status = await api.application('web');
      return status.rollout?.state === 'rolled-back' && status.rollout;
    }, 120_000, 250);
    await until('three healthy instances answering v2 again', async () => {
      const status = await api.application('web');
      const live = (status.instances ?? []).filter((i) => !i.draining && i.state === 'running' && i.health === 'healthy');
      if (live.length !== 3 || (status.instances ?? []).length !== 3) return false;
      for (let k = 0; k < 9; k++) if (!(await get(node(2).address)).endsWith('v2')) return false;
      return true;
    }, 180_000, 500);
    const seen = await client.stop();
    console.log(`steady client over a rolled-back update (${rolledBack.reason}): ${seen.ok} requests, ${seen.failed.length} failed`);
    expect(seen.failed).toEqual([]);
    expect(seen.bodies.some((b) => b.endsWith('v3'))).toBe(false);
  }, LONG);

  it('pauses a broken update (stop-first, failure_action: pause) under a steady client: no failed request, nothing more replaced, and a good spec resumes it', async () => {
    const client = steadyClient(node(2).address);
    await new Promise((r) => setTimeout(r, 1_000));
    await deploy(BROKEN.replace('failure_action: rollback', 'failure_action: pause'));
    const paused = await until('the rollout to pause', async () => {
      const status = await api.application('web');
      return status.rollout?.state === 'paused' && status.rollout;
    }, 120_000, 250);
    const healthyIds = async () => ((await api.application('web')).instances ?? []).filter((i) => !i.draining && i.state === 'running' && i.health === 'healthy').map((i) => i.id).sort();
    const kept = await healthyIds();
    // Longer than the monitor window (8 s) and the update's delay: a paused rollout replaces nothing more.
    await new Promise((r) => setTimeout(r, 12_000));
    expect((await api.application('web')).rollout?.state).toBe('paused');
    expect(await healthyIds()).toEqual(kept);
    expect(kept.length).toBe(2);
    for (let k = 0; k < 9; k++) expect(await get(node(2).address)).toMatch(/VERSION=v2$/);
    // A good spec written over the paused one rolls out as any update does.
    await deploy(compose(3, 'v2', 'v2'));
    await until('three healthy instances answering v2, the rollout ended', async () => {
      const status = await api.application('web');
      const live = (status.instances ?? []).filter((i) => !i.draining && i.state === 'running' && i.health === 'healthy');
      if (status.rollout?.state === 'paused' || live.length !== 3 || (status.instances ?? []).length !== 3) return false;
      for (let k = 0; k < 9; k++) if (!(await get(node(2).address)).endsWith('v2')) return false;
      return true;
    }, 180_000, 500);
    const seen = await client.stop();
    console.log(`steady client over a paused update (${paused.reason}) and its resumption: ${seen.ok} requests, ${seen.failed.length} failed`);
    expect(seen.failed).toEqual([]);
    expect(seen.bodies.some((b) => b.endsWith('v3'))).toBe(false);
  }, LONG);

  // docs/DESIGN.md §30 "Updating a single application": the route holds from the write to the new container's first passing health check.
  it('holds connections through a single application\'s update (stop, start): no failed request, the new container has the new environment', async () => {
    await deploy(SINGLE('v1'), 'single');
    const answers = (version: string) => until(`the single application to answer ${version}`, async () => (await get(node(1).address, 5_000, SINGLE_PORT).catch(() => '')) === `VERSION=${version}`, 120_000, 250);
    await answers('v1');
    const client = steadyClient(node(1).address, SINGLE_PORT, 25_000);
    let sampling = true;
    let held = false;
    let corr: string | undefined;
    const sampler = (async () => {
      while (sampling) {
        const route = (await api.routes()).routes.find((r) => r.application === 'single' && r.hold);
        if (route !== undefined) [held, corr] = [true, corr ?? route.migration];
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 1_000));
    const [began, deployedAt] = [performance.now(), new Date().toISOString()];
    await deploy(SINGLE('v2'), 'single');
    await until('the update to end', async () => (await api.application('single')).state === 'running' && !(await api.routes()).routes.some((r) => r.application === 'single' && r.hold) && held, 120_000, 250);
    await answers('v2');
    const tookS = (performance.now() - began) / 1000;
    sampling = false;
    await sampler;
    const seen = await client.stop();
    const v1 = seen.bodies.filter((b) => b === 'VERSION=v1').length;
    console.log(`steady client over a single application's update (${tookS.toFixed(1)} s to answer v2): ${seen.ok} requests (${v1} v1, ${seen.ok - v1} v2), ${seen.failed.length} failed (${seen.failed.join(', ')}); longest request ${Math.round(seen.longestMs)} ms (held); deployed at ${deployedAt}, slow or failed requests: ${seen.slow.join('; ')}`);
    expect(held).toBe(true);
    expect(seen.failed).toEqual([]);
    expect(seen.bodies.at(-1)).toBe('VERSION=v2');
    const where = (await api.containerStates()).find((c) => c.name === 'single' && c.running)!;
    const on = cluster().nodes.find((n) => n.uuid === where.node_uuid)!;
    const env = await execa('docker', ['-H', `unix://${on.dockerSocket}`, 'inspect', '-f', '{{json .Config.Env}}', 'drover-single']);
    expect(JSON.parse(env.stdout)).toContain('VERSION=v2');
    // One correlation id for the whole update, as for a move: the control service's records, the agent's stop and start, the proxy's release.
    const logs = await Promise.all(servicesStatus(cluster()).map(async (s) => ({ kind: s.kind, text: await readFile(s.logFile, 'utf8').catch(() => '') })));
    const kinds = [...new Set(logs.filter((l) => corr !== undefined && l.text.includes(`"corr":"${corr}"`)).map((l) => l.kind))].sort();
    console.log(`update ${corr}: records with its corr in the logs of ${kinds.join(', ')}`);
    expect(kinds).toEqual(expect.arrayContaining(['agent', 'control', 'proxy']));
  }, LONG);

  // Last: node 1 stays dead (the cluster is torn down after).
  it('replaces the instance of a node that dies elsewhere within the detection time, and a live node\'s proxy fails no request', async () => {
    await instancesRunning('web', 3);
    await countThrough(2, 3);
    const client = steadyClient(node(2).address);
    await new Promise((r) => setTimeout(r, 1_000));
    const { at } = await killNode(cluster(), 1);
    const dead = node(1).uuid;
    const live = await instancesRunning('web', 3, (l) => l.every((i) => i.node_uuid !== dead), 120_000);
    const replacedS = (performance.now() - at) / 1000;
    await countThrough(2, 3);
    const seen = await client.stop();
    console.log(`node 1 killed: its instance replaced (3 healthy on ${new Set(live.map((i) => i.node_uuid)).size} nodes) ${replacedS.toFixed(1)} s after; steady client through node 2: ${seen.ok} requests, ${seen.failed.length} failed, ${await replayed(2)} replayed by its proxy`);
    expect(seen.failed).toEqual([]);
    // Detection is the 10 s lease; placing, pulling nothing and a 1 s health check add a few seconds (bound for a loaded machine).
    expect(replacedS).toBeLessThan(60);
  }, LONG);
});
