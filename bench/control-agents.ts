/**
 * The simulated agents of bench:control, in a process of their own (so their load does not
 * delay the measuring client): each reports its node's datasets and containers every
 * second and long-polls its desired view over HTTP, and tells the parent (IPC) when a
 * migration first appears in its view, with the absolute time.
 *
 * Parent → child: `{base, n, nodes}` to start, `'stop'` to end. Child → parent: `'ready'`,
 * then `{node, id, at}` per migration seen.
 */
import { Agent, request } from 'node:http';
import { systemClock } from '#common/clock.ts';

/** Keep-alive connections, and node:http rather than fetch: the simulated agents stand for 200 machines, so their own CPU is kept small (fetch cost about twice as much here). */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

/** One HTTP exchange: the answer's status and text. */
function call(url: string, method: 'GET' | 'POST', body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const nodeId = (i: number) => `00000001-0000-4000-8000-${String(i).padStart(12, '0')}`;
const datasetId = (i: number) => `0000000d-0000-4000-8000-${String(i).padStart(12, '0')}`;
const sleep = (ms: number): Promise<void> => systemClock.sleep(ms);
const now = () => performance.timeOrigin + performance.now();

let stopped = false;

function reportOf(index: number, n: number, nodes: number): string {
  const mine: number[] = [];
  for (let i = index; i < n; i += nodes) mine.push(i);
  return JSON.stringify({
    uuid: nodeId(index),
    host: `127.1.${Math.floor(index / 250)}.${(index % 250) + 1}`,
    era: `era-${index}`,
    labels: {},
    transfer: {},
    datasets: mine.map((i) => ({ dataset_id: datasetId(i), path: `/drover/${datasetId(i)}`, writable: true, maximum_size: null, used_bytes: 1024, snapshots: [] })),
    containers: mine.map((i) => ({ name: `app${i}`, image: 'redis:7', running: true, health: 'unknown', restart_count: 0, published: [{ internal: 6379, host: '127.0.0.1', host_port: 30000 + (i % 30000) }], generation: 0 })),
    problems: [],
  });
}

async function reportLoop(base: string, body: string): Promise<void> {
  await sleep(Math.random() * 1000);
  while (!stopped) {
    const started = Date.now();
    await call(`${base}/v1/drover/agents/report`, 'POST', body).catch(() => undefined);
    await sleep(Math.max(0, 1000 - (Date.now() - started)));
  }
}

async function pollLoop(base: string, index: number, first: () => void): Promise<void> {
  const seen = new Set<string>();
  let after: number | undefined;
  while (!stopped) {
    try {
      const query = after === undefined ? '' : `?after=${after}&wait_ms=5000`;
      const answer = await call(`${base}/v1/drover/agents/${nodeId(index)}/desired${query}`, 'GET');
      if (answer.status !== 200) throw new Error(`desired view answered ${answer.status}`);
      const view = JSON.parse(answer.text) as { version: number; migrations: { id: string }[] };
      const at = now();
      for (const m of view.migrations) {
        if (seen.has(m.id)) continue;
        seen.add(m.id);
        process.send!({ node: index, id: m.id, at });
      }
      if (after === undefined) first();
      after = view.version;
    } catch {
      await sleep(100);
    }
  }
}

process.on('message', (message: unknown) => {
  if (message === 'stop') {
    stopped = true;
    setTimeout(() => process.exit(0), 100).unref();
    return;
  }
  const { base, n, nodes } = message as { base: string; n: number; nodes: number };
  let started = 0;
  for (let i = 0; i < nodes; i++) {
    void reportLoop(base, reportOf(i, n, nodes));
    void pollLoop(base, i, () => {
      if (++started === nodes) process.send!('ready');
    });
  }
});
