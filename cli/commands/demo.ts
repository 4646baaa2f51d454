import { DroverError, isDroverError } from '#common/errors.ts';
import type { Migration } from '#common/model.ts';
import { AckedWriter, loadData, type Endpoint } from '../demo/redis-load.ts';
import { RedisConnection } from '../demo/redis-client.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, type CliContext } from '../context.ts';
import { bytes, duration } from '../format.ts';
import { resolveNode } from '../resolve.ts';
import { moveCommand } from './move.ts';

const USAGE = 'drover demo [<application> <node>] [--load-mib N] [--via HOST:PORT] [--timeout SECONDS]';

/**
 * `drover demo`: a Redis application moved under load (scripts/demo.sh runs it after
 * `drover cluster up` and `drover deploy examples/redis/…`). Waits until the application is
 * healthy, loads `--load-mib` of random values, starts a client writing through the proxy of
 * the node it runs on (recording every acknowledged write; reconnecting and re-sending on a
 * closed connection), runs `drover move` with its progress display, reads every
 * acknowledged write back, and prints the cutover pause, failed requests, lost writes and
 * bytes moved. Exit 1 when the move failed or a write was lost.
 */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'move a Redis under load and show what a client saw (scripts/demo.sh)',
  usage: USAGE,
  configure: (command) =>
    command
      .argument('[application]', 'the application to move (default: redis)')
      .argument('[node]', 'where to (default: n2)')
      .option('--load-mib <n>', 'MiB of random values loaded before the move (default: 32)')
      .option('--via <host:port>', "where the client connects (default: the proxy of the application's node)")
      .option('--timeout <seconds>', "the move's timeout (default: 600)"),
  async run(ctx, values, positionals) {
    if (positionals.length !== 0 && positionals.length !== 2) throw usageError('demo takes an application and a node, or neither (redis, n2)', USAGE);
    const [app, to] = positionals.length === 2 ? (positionals as [string, string]) : ['redis', 'n2'];
    const loadMiB = Number((values.loadMib as string | undefined) ?? '32');
    if (!Number.isFinite(loadMiB) || loadMiB < 0 || loadMiB > 4096) throw usageError('--load-mib must be 0..4096', USAGE);
    const timeout = (values.timeout as string | undefined) ?? '600';

    const nodes = await ctx.control.nodes();
    const target = resolveNode(nodes, to);
    const status = await waitHealthy(ctx, app, 180_000);
    const from = nodes.find((n) => n.uuid === status.node_uuid);
    const via = values.via !== undefined ? parseEndpoint(values.via as string) : await proxyOf(ctx, app, from?.host);
    print(ctx.stdout, `${app} is healthy on ${label(from)}; its clients go through drover's proxy at ${via.host}:${via.port}`);
    await waitPong(via, 60_000);

    if (loadMiB > 0) {
      const started = performance.now();
      const keys = await loadData(via, { prefix: 'demo:data:', bytes: loadMiB * 1024 * 1024 });
      print(ctx.stdout, `loaded ${loadMiB} MiB of random values (${keys} keys) in ${duration(performance.now() - started)}`);
    }

    const writer = new AckedWriter(() => via, { prefix: 'demo:write:' });
    writer.start();
    await ctx.sleep(2_000);
    print(ctx.stdout, `a client is writing through ${via.host}:${via.port}: ${writer.acked} writes acknowledged so far`);
    print(ctx.stdout, '');
    print(ctx.stdout, `$ drover move ${app} ${to}`);
    let moveError: unknown = null;
    try {
      await moveCommand.run(ctx, { timeout }, [app, to]);
    } catch (err) {
      moveError = err;
      print(ctx.stdout, `the move failed: ${isDroverError(err) ? err.message : String(err)}`);
    }
    await ctx.sleep(1_500); // a little more traffic through the new route
    const report = await writer.stop();
    const check = await writer.verify(via);
    const migration = await lastMigration(ctx, app);

    print(ctx.stdout, '');
    print(ctx.stdout, 'what the client saw');
    const rows: Array<[string, string]> = [
      ['moved', `${app}: ${label(from)} → ${label(target)}${migration ? `, ${migration.round} round(s), phase ${migration.phase}` : ''}`],
      ['cutover pause', `${duration(report.pauseMs)} (the longest gap between two acknowledged writes; drover measured its cutover at ${duration(migration?.cutover_ms ?? null)})`],
      ['writes', `${report.acked} acknowledged, ${report.reconnects} reconnect(s)`],
      ['failed requests', `${report.failed}${report.failures.length > 0 ? ` (first: ${report.failures[0]!.kind}: ${report.failures[0]!.message})` : ''}`],
      ['lost writes', `${check.lost.length} of ${check.checked} acknowledged writes missing after the move${check.lost.length > 0 ? ` (e.g. ${check.lost.slice(0, 3).join(', ')})` : ''}`],
      ['bytes moved', bytes(migration?.bytes_sent ?? null)],
    ];
    for (const [name, text] of rows) print(ctx.stdout, `  ${name.padEnd(16)}${text}`);
    if (moveError !== null) throw moveError;
    if (check.lost.length > 0) {
      throw new DroverError('DROVER_DEMO_LOST_WRITES', `${check.lost.length} acknowledged writes were lost`, { detail: { lost: check.lost.slice(0, 20) } });
    }
    return 0;
  },
};

function label(node: { host: string; labels: Record<string, string> } | undefined): string {
  if (node === undefined) return 'an unknown node';
  return node.labels.name ? `${node.labels.name} (${node.host})` : node.host;
}

function parseEndpoint(text: string): Endpoint {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  if (!m) throw usageError(`--via "${text}" is not HOST:PORT (an IPv4 address)`, USAGE);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The proxy of the node the application runs on, at its first external port. */
async function proxyOf(ctx: CliContext, app: string, host: string | undefined): Promise<Endpoint> {
  const { containers } = await ctx.control.containers();
  const port = containers.find((c) => c.name === app)?.ports[0]?.external;
  if (port === undefined || host === undefined) {
    throw new DroverError('DROVER_DEMO_NO_PORT', `"${app}" publishes no port, or runs on no known node; give --via HOST:PORT`);
  }
  return { host, port };
}

async function waitHealthy(ctx: CliContext, app: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let said = '';
  for (;;) {
    const status = await ctx.control.application(app).catch((err: unknown) => {
      if (isDroverError(err) && Date.now() < deadline) return null;
      throw err;
    });
    if (status !== null && status.state === 'running' && (status.health === 'healthy' || status.health === null) && status.migration === null) return status;
    const now = status === null ? 'not deployed yet' : `${status.state}${status.health ? `, ${status.health}` : ''}`;
    if (now !== said) print(ctx.stdout, `waiting for ${app} to be healthy (${now})`);
    said = now;
    if (Date.now() > deadline) throw new DroverError('DROVER_TIMEOUT', `${app} is not healthy after ${duration(timeoutMs)} (${now}); drover status shows why`);
    await ctx.sleep(500);
  }
}

/** Until Redis answers PONG through the proxy (its route may still be on its way). */
async function waitPong(at: Endpoint, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const client = await RedisConnection.connect(at, { connectTimeoutMs: 2_000, commandTimeoutMs: 5_000 });
      try {
        if (await client.ping()) return;
      } finally {
        client.close();
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new DroverError('DROVER_TIMEOUT', `no PONG from ${at.host}:${at.port} within ${duration(timeoutMs)} (${last})`);
}

async function lastMigration(ctx: CliContext, app: string): Promise<Migration | null> {
  const all = (await ctx.control.migrations().catch(() => [])).filter((m) => m.application === app);
  return all.sort((a, b) => a.started_at - b.started_at).at(-1) ?? null;
}
