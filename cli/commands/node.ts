import type { NodeSchedulingAnswer, NodeStateAnswer } from '#common/api.ts';
import { DroverError } from '#common/errors.ts';
import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson, type CliContext } from '../context.ts';
import { duration } from '../format.ts';
import { POLL_MS } from '../migration-progress.ts';
import { resolveNode } from '../resolve.ts';

const USAGE = [
  'drover node cordon <node> [--json]',
  '       drover node uncordon <node> [--json]',
  '       drover node drain <node> [--no-wait] [--timeout SECONDS] [--json]',
  '       drover node trust-host-key <node> [--fingerprint SHA256:…] [--json]',
].join('\n');

/**
 * `drover node cordon|uncordon|drain <node>` (docs/DESIGN.md §19): a cordoned node gets
 * nothing new (applications, replicas); what runs there stays. Drain cordons it and the
 * control service moves every application off with its data, two at a time; unless
 * `--no-wait` this waits, printing each change, until the node is empty (exit 0) or what is
 * left cannot move (exit 1, with each reason). `trust-host-key` accepts a reinstalled node's
 * new ssh host key on purpose (docs/DESIGN.md §23).
 */
export const nodeCommand: Command = {
  name: 'node',
  summary: "cordon, uncordon or drain a node; accept its new ssh host key",
  usage: USAGE,
  subcommands: [
    {
      name: 'cordon',
      summary: 'place nothing new on the node (what runs there stays)',
      usage: 'drover node cordon <node> [--json]',
      needs: 'a node',
      configure: (command) => command.argument('<node>', 'its uuid (or a unique prefix), address, or name label'),
      async run(ctx, _values, args) {
        if (args.length !== 1) throw usageError('node cordon needs a node', USAGE);
        const node = resolveNode(await ctx.control.nodes(), args[0]!);
        const answer = await ctx.control.cordonNode(node.uuid);
        if (ctx.json) printJson(ctx.stdout, answer);
        else print(ctx.stdout, `${nameOf(node)} cordoned: nothing new is placed there; ${count(answer.applications.length)} stay${answer.applications.length === 1 ? 's' : ''} (drover node drain ${nameOf(node)} moves them off)`);
        return 0;
      },
    },
    {
      name: 'uncordon',
      summary: 'make the node schedulable again (a drain starts no more moves)',
      usage: 'drover node uncordon <node> [--json]',
      needs: 'a node',
      configure: (command) => command.argument('<node>', 'its uuid (or a unique prefix), address, or name label'),
      async run(ctx, _values, args) {
        if (args.length !== 1) throw usageError('node uncordon needs a node', USAGE);
        const node = resolveNode(await ctx.control.nodes(), args[0]!);
        const answer = await ctx.control.uncordonNode(node.uuid);
        if (ctx.json) printJson(ctx.stdout, answer);
        else print(ctx.stdout, `${nameOf(node)} is schedulable again${answer.migrations.length > 0 ? `; ${answer.migrations.length} move(s) off it still running finish` : ''}`);
        return 0;
      },
    },
    {
      name: 'trust-host-key',
      summary: "accept the node's new ssh host key (after a reinstall): senders pin it from then on",
      usage: 'drover node trust-host-key <node> [--fingerprint SHA256:…] [--json]',
      needs: 'a node',
      configure: (command) =>
        command
          .argument('<node>', 'its uuid (or a unique prefix), address, or name label')
          .option('--fingerprint <fingerprint>', 'the key checked on the node (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); it must be the one the node reports'),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('node trust-host-key needs a node', USAGE);
        const fingerprint = values.fingerprint as string | undefined;
        if (fingerprint !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fingerprint)) {
          throw usageError(`--fingerprint "${fingerprint}" is not an OpenSSH SHA256 fingerprint (SHA256: and 43 base64 characters, as ssh-keygen -lf prints it)`, USAGE);
        }
        const node = resolveNode(await ctx.control.nodes(), args[0]!);
        const answer = await ctx.control.trustHostKey(node.uuid, fingerprint);
        if (ctx.json) printJson(ctx.stdout, answer);
        else print(ctx.stdout, `${nameOf(node)}: ssh host key ${answer.host_key_accepted.fingerprint} accepted (was ${answer.host_key_accepted.previous}); senders pin it from now on`);
        return 0;
      },
    },
    {
      name: 'drain',
      summary: 'cordon the node and move every application off it with its data',
      usage: 'drover node drain <node> [--no-wait] [--timeout SECONDS] [--json]',
      needs: 'a node',
      configure: (command) =>
        command
          .argument('<node>', 'its uuid (or a unique prefix), address, or name label')
          .option('--no-wait', 'start the drain and return at once')
          .option('--timeout <seconds>', 'how long to wait for the node to empty (the drain carries on)', '3600'),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('node drain needs a node', USAGE);
        const timeoutText = (values.timeout as string | undefined) ?? '3600';
        if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1) throw usageError(`--timeout "${timeoutText}" is not a number of seconds`, USAGE);
        const nodes = await ctx.control.nodes();
        const node = resolveNode(nodes, args[0]!);
        const first = await ctx.control.drainNode(node.uuid);
        const hostOf = (uuid: string) => nameOf(nodes.find((n) => n.uuid === uuid) ?? { host: uuid, labels: {} });
        if (!ctx.json) {
          print(ctx.stdout, `draining ${nameOf(node)}: ${count(first.applications.length)} to move`);
          for (const m of first.started) print(ctx.stdout, `  moving "${m.application}" to ${hostOf(m.to)} (migration ${m.id.slice(0, 8)})`);
          for (const c of first.cannot_move) print(ctx.stdout, `  "${c.application}" cannot move: ${c.reason}`);
        }
        if (values.wait === false) {
          if (ctx.json) printJson(ctx.stdout, first);
          return 0;
        }
        const end = await waitDrained(ctx, node.uuid, first, Number(timeoutText) * 1000, hostOf);
        if (ctx.json) printJson(ctx.stdout, end);
        if (end.applications.length > 0) {
          throw new DroverError('DROVER_MIGRATION_FAILED', `${nameOf(node)} is not drained: ${end.cannot_move.map((c) => `"${c.application}": ${c.reason}`).join('; ')}`, {
            detail: { node_uuid: node.uuid, left: end.applications },
          });
        }
        if (!ctx.json) print(ctx.stdout, `${nameOf(node)} drained: no application left (cordoned; drover node uncordon ${nameOf(node)} makes it schedulable again)`);
        return 0;
      },
    },
  ],
};

/**
 * Polls the node's scheduling state until no application is left on it, or what is left
 * cannot move (no move running and a reason for each), or `timeoutMs` passes. Prints a line
 * each time the moves or what is left change.
 */
async function waitDrained(ctx: CliContext, uuid: string, first: NodeSchedulingAnswer, timeoutMs: number, hostOf: (uuid: string) => string): Promise<NodeSchedulingAnswer> {
  let current = first;
  let last = '';
  const maxPolls = Math.max(1, Math.ceil(timeoutMs / POLL_MS));
  for (let poll = 0; ; poll++) {
    const stuck = current.migrations.length === 0 && current.applications.every((a) => current.cannot_move.some((c) => c.application === a));
    if (current.applications.length === 0 || stuck) return current;
    if (!ctx.json) {
      const moving = current.migrations.map((m) => `"${m.application ?? 'datasets'}" → ${hostOf(m.to)} ${m.phase}`).join(', ');
      const line = `  draining (${current.applications.length} left)${moving ? `: ${moving}` : ''}`;
      if (line !== last) print(ctx.stdout, line);
      last = line;
    }
    if (poll >= maxPolls) {
      throw new DroverError('DROVER_TIMEOUT', `the node still holds ${count(current.applications.length)} after ${duration(timeoutMs)}; the drain carries on without this command (drover status shows it)`, {
        detail: { node_uuid: uuid, left: current.applications },
      });
    }
    await ctx.sleep(POLL_MS);
    current = await ctx.control.nodeScheduling(uuid);
  }
}

function nameOf(node: Pick<NodeStateAnswer, 'host' | 'labels'>): string {
  return node.labels.name ?? node.host;
}

function count(n: number): string {
  return `${n} application${n === 1 ? '' : 's'}`;
}
