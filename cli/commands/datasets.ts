import { usageError } from '../cli-error.ts';
import type { Command, Values } from '../command.ts';
import { print, printJson, type CliContext } from '../context.ts';
import { bytes, table } from '../format.ts';
import { resolveDataset, resolveNode } from '../resolve.ts';
import { parseSize } from '#common/units.ts';

const USAGE = [
  'drover datasets list [--json]',
  '       drover datasets create <node> [--size SIZE] [--name NAME] [--json]',
  '       drover datasets delete <dataset (id or name)> [--json]',
  '       drover datasets move <dataset (id or name)> <node> [--json]',
].join('\n');

const nodeArgument = 'a node: its uuid (or a unique prefix), address, or name label';
const datasetArgument = 'a dataset: its id (or a unique prefix), or its name';

/** `drover datasets …`: Flocker's dataset API from the command line. */
export const datasetsCommand: Command = {
  name: 'datasets',
  summary: 'list, create, delete or move datasets',
  usage: USAGE,
  subcommands: [
    {
      name: 'list',
      summary: 'every dataset, with its primary and size',
      usage: 'drover datasets list [--json]',
      async run(ctx, _values, args) {
        if (args.length !== 0) throw usageError('datasets list needs no arguments', USAGE);
        return list(ctx);
      },
    },
    {
      name: 'create',
      summary: 'create a dataset on a node',
      usage: 'drover datasets create <node> [--size SIZE] [--name NAME] [--json]',
      needs: 'a node',
      configure: (command) =>
        command
          .argument('<node>', nodeArgument)
          .option('--size <size>', 'its maximum size ("500M", "2.5G", bytes; default: unlimited)')
          .option('--name <name>', 'its name (metadata)'),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('datasets create needs a node', USAGE);
        return create(ctx, args[0]!, values);
      },
    },
    {
      name: 'delete',
      summary: 'delete a dataset',
      usage: 'drover datasets delete <dataset (id or name)> [--json]',
      needs: 'a dataset',
      configure: (command) => command.argument('<dataset>', datasetArgument),
      async run(ctx, _values, args) {
        if (args.length !== 1) throw usageError('datasets delete needs a dataset', USAGE);
        const dataset = resolveDataset(await datasetsOf(ctx), args[0]!);
        const answer = await ctx.control.deleteDataset(dataset.dataset_id);
        if (ctx.json) printJson(ctx.stdout, answer);
        else print(ctx.stdout, `deleted dataset ${answer.dataset_id}${answer.metadata.name ? ` (${answer.metadata.name})` : ''}`);
        return 0;
      },
    },
    {
      name: 'move',
      summary: 'move a dataset, with its data, to another node',
      usage: 'drover datasets move <dataset (id or name)> <node> [--json]',
      needs: 'a dataset and a node',
      configure: (command) => command.argument('<dataset>', datasetArgument).argument('<node>', nodeArgument),
      async run(ctx, _values, args) {
        if (args.length !== 2) throw usageError('datasets move needs a dataset and a node', USAGE);
        const [datasets, nodes] = await Promise.all([datasetsOf(ctx), ctx.control.nodes()]);
        const dataset = resolveDataset(datasets, args[0]!);
        const node = resolveNode(nodes, args[1]!);
        const answer = await ctx.control.moveDataset(dataset.dataset_id, node.uuid);
        if (ctx.json) printJson(ctx.stdout, answer);
        else if (answer.migration) print(ctx.stdout, `moving dataset ${answer.dataset_id} to ${node.host} (migration ${answer.migration.id}; drover status shows it)`);
        else print(ctx.stdout, `dataset ${answer.dataset_id} now has primary ${node.host} (${node.uuid})`);
        return 0;
      },
    },
  ],
};

async function datasetsOf(ctx: CliContext) {
  return (await ctx.control.datasets()).datasets;
}

async function list(ctx: CliContext): Promise<number> {
  const [datasets, state, nodes] = await Promise.all([datasetsOf(ctx), ctx.control.datasetStates(), ctx.control.nodes()]);
  if (ctx.json) {
    printJson(ctx.stdout, datasets.map((d) => ({ ...d, path: state.find((s) => s.dataset_id === d.dataset_id)?.path ?? null })));
    return 0;
  }
  const host = (uuid: string) => nodes.find((n) => n.uuid === uuid)?.host ?? uuid;
  print(
    ctx.stdout,
    table(
      ['ID', 'NAME', 'PRIMARY', 'SIZE', 'PROJECT', 'DELETED'],
      datasets.map((d) => [d.dataset_id, d.metadata.name, host(d.primary), d.maximum_size === null ? 'unlimited' : bytes(d.maximum_size), d.metadata.project, d.deleted ? 'yes' : '']),
    ),
  );
  return 0;
}

async function create(ctx: CliContext, nodeRef: string, values: Values): Promise<number> {
  const body: { primary: string; maximum_size?: number; metadata?: Record<string, string> } = { primary: '' };
  if (typeof values.size === 'string') {
    const size = parseSize(values.size);
    if (size === null) throw usageError(`--size "${values.size}" is not a size ("500M", "2.5G", bytes)`, USAGE);
    body.maximum_size = Math.ceil(size / 1024) * 1024;
  }
  if (typeof values.name === 'string') body.metadata = { name: values.name };
  body.primary = resolveNode(await ctx.control.nodes(), nodeRef).uuid;
  const answer = await ctx.control.createDataset(body);
  if (ctx.json) printJson(ctx.stdout, answer);
  else print(ctx.stdout, `created dataset ${answer.dataset_id}${answer.metadata.name ? ` (${answer.metadata.name})` : ''}`);
  return 0;
}
