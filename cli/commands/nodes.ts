import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';
import { duration, labels, shortId, table } from '../format.ts';

const USAGE = 'drover nodes [-o wide|json] [--json]';

/**
 * `drover nodes`: one row per node — its name label, address, state (a silent one says for
 * how long; a cordon or drain follows), how many applications it runs, and when it was last
 * heard from. `-o wide` adds the full uuid, the labels and the applications by name; `--json`
 * the API's answer with each node's applications.
 */
export const nodesCommand: Command = {
  name: 'nodes',
  summary: 'list the nodes: state, applications, last seen',
  usage: USAGE,
  async run(ctx, _values, positionals) {
    if (positionals.length > 0) throw usageError(`nodes takes no arguments, got "${positionals[0]}"`, USAGE);
    const [nodes, { containers }] = await Promise.all([ctx.control.nodes(), ctx.control.containers()]);
    const now = ctx.now?.() ?? Date.now();
    const rows = nodes
      .map((n) => ({ ...n, applications: containers.filter((a) => a.node_uuid === n.uuid).map((a) => a.name).sort() }))
      .sort((a, b) => (a.labels.name ?? a.host).localeCompare(b.labels.name ?? b.host, 'en', { numeric: true }));
    if (ctx.json) {
      printJson(ctx.stdout, rows);
      return 0;
    }
    const state = (n: (typeof rows)[number]) => {
      const silent = n.state !== 'known' && typeof n.silent_ms === 'number' ? ` (silent ${duration(n.silent_ms)})` : '';
      const cordon = !n.cordoned ? '' : !n.draining ? ', cordoned' : n.applications_left === 0 ? ', drained' : `, draining (${n.applications_left ?? '?'} left)`;
      return `${n.state}${silent}${cordon}`;
    };
    const seen = (n: (typeof rows)[number]) => (n.last_seen === null ? 'never' : `${duration(Math.max(0, now - n.last_seen))} ago`);
    if (ctx.wide) {
      print(ctx.stdout, table(['NAME', 'ADDRESS', 'UUID', 'STATE', 'APPLICATIONS', 'LAST SEEN', 'LABELS'], rows.map((n) => [n.labels.name, n.host, n.uuid, state(n), n.applications.join(','), seen(n), labels(n.labels)])));
    } else {
      print(ctx.stdout, table(['NAME', 'ADDRESS', 'UUID', 'STATE', 'APPS', 'LAST SEEN'], rows.map((n) => [n.labels.name, n.host, shortId(n.uuid), state(n), n.applications.length, seen(n)])));
    }
    return 0;
  },
};
