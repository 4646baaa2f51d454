import { isDroverError } from '#common/errors.ts';
import type { StreamEvent } from '#common/event-stream.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print } from '../context.ts';
import { EVENT_TYPES, eventLine } from '../event-lines.ts';

const USAGE = 'drover events [-f] [--since ID] [--types TYPE,…] [--json]';
/** Consecutive failed reconnections of `-f` before giving up. */
const MAX_RECONNECTS = 10;
const RECONNECT_MS = 1_000;

/**
 * `drover events`: the control service's events (`GET /v1/drover/events`): configuration
 * changes, nodes going known, unknown or down, migration steps, replicas changing state,
 * refused reports. Without `-f`, the events the control service keeps (its last 1000) and
 * exit; with `-f`, those and then each new one as it happens, until interrupted — a lost
 * connection is taken up again after the last event seen, so none is missed while the
 * control service keeps it. `--since ID` starts after an event (ids are printed with
 * `--json`); `--types` keeps some types. `--json`: one JSON object per line.
 */
export const eventsCommand: Command = {
  name: 'events',
  summary: 'show the cluster\'s events; -f follows them as they happen',
  usage: USAGE,
  configure: (command) =>
    command
      .option('-f, --follow', 'keep printing events as they happen')
      .option('--since <id>', 'only events after this one (an id from --json)')
      .option('--types <types>', `only these types, comma-separated: ${EVENT_TYPES.join(', ')}`),
  async run(ctx, values, positionals) {
    if (positionals.length > 0) throw usageError(`events takes no arguments, got "${positionals[0]}"`, USAGE);
    const sinceText = values.since as string | undefined;
    if (sinceText !== undefined && !/^\d+$/.test(sinceText)) throw usageError(`--since "${sinceText}" is not an event id (a whole number)`, USAGE);
    const typesText = values.types as string | undefined;
    const types = typesText?.split(',').map((t) => t.trim());
    const unknown = types?.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t)) ?? [];
    if (unknown.length > 0) throw usageError(`--types: no event type ${unknown.map((t) => `"${t}"`).join(', ')}; the types are ${EVENT_TYPES.join(', ')}`, USAGE);
    const follow = values.follow === true;
    const nodes = await ctx.control.nodes().catch(() => []);
    const nameOf = (uuid: string) => {
      const n = nodes.find((x) => x.uuid === uuid);
      return n?.labels.name ?? n?.host ?? uuid.slice(0, 8);
    };
    const show = (e: StreamEvent) => {
      if (ctx.json) print(ctx.stdout, JSON.stringify({ id: e.id === null ? null : Number(e.id), type: e.type, ...(e.data as object) }));
      else print(ctx.stdout, eventLine(e, nameOf));
    };
    let since = sinceText === undefined ? 0 : Number(sinceText);
    for (let failures = 0; ; ) {
      try {
        for await (const e of ctx.control.events({ since, follow, ...(types ? { types } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) })) {
          show(e);
          failures = 0;
          if (e.id !== null && /^\d+$/.test(e.id)) since = Number(e.id);
        }
      } catch (err) {
        // A refusal (403, a bad query) is final; a lost connection or a cut stream is taken up again.
        const refused = isDroverError(err) && !isDroverError(err, 'DROVER_CONTROL_UNREACHABLE');
        if (!follow || refused || ++failures > MAX_RECONNECTS) throw err;
      }
      if (!follow || ctx.signal?.aborted) return 0;
      // The server ended the stream (it is stopping): take it up again after the last event seen.
      await ctx.sleep(RECONNECT_MS);
      if (ctx.signal?.aborted) return 0;
    }
  },
};
