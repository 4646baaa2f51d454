import { Command, CommanderError, Option } from 'commander';
import { isDroverError } from '#common/errors.ts';
import { createLogger } from '#common/log.ts';
import { clusterDown, readCluster } from './cluster.ts';
import { ensureImageArchive, IMAGE_CACHE, imageTag } from './images.ts';
import { canConnect, pingDocker } from './readiness.ts';
import { servicesReport } from './services.ts';
import { clusterUpWithServices } from './services-up.ts';
import type { LocalCluster, LocalImage } from './types.ts';

/** The CLI's default --control: the control service of the cluster `demo`. */
const DEFAULT_CONTROL = 'http://127.0.0.1:4523';

const USAGE = `up [--nodes N] [--name NAME] [--subnet S] [--images busybox,redis]
       drover cluster down [--name NAME]
       drover cluster status [--name NAME]
       drover cluster images [--images busybox,redis]`;

// One paragraph per string: commander wraps them to the terminal.
const DESCRIPTION = [
  'A local cluster plays a whole drover cluster on this machine (root needed): node i gets the address 127.0.S.(10+i), ' +
    "a zfs-fuse pool, an sshd and a dockerd, and drover's own processes: a control service (127.0.0.1:4523 for demo, " +
    'else 127.0.S.11:4523) and per node an agent, a proxy and a volume plugin. NAME defaults to demo.',
  "'up' on an existing cluster repairs it: it starts again whatever died (a dockerd, sshd, agent, proxy, plugin) and " +
    "keeps its pools, node ids and keys; asked for another size it refuses. 'status' exits 1 unless every process runs " +
    "and every node is known. Only 'down' removes anything.",
  `'images' builds the local images once (offline) into ${IMAGE_CACHE}.`,
].join('\n\n');

/**
 * Output that survives a closed reader (`drover cluster up | head -1`): once stdout says
 * EPIPE, further output is dropped instead of crashing the command half-way.
 */
let stdoutClosed = false;
function guardStdout(): void {
  if (process.stdout.listeners('error').includes(onStdoutError)) return;
  process.stdout.on('error', onStdoutError);
}
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') stdoutClosed = true;
  else throw err;
}

function print(text: string): void {
  if (!stdoutClosed) process.stdout.write(`${text}\n`);
}

function printError(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n');
}

async function nodeTable(cluster: LocalCluster): Promise<string> {
  const rows = [['NODE', 'UUID', 'ADDRESS', 'POOL', 'DOCKER', 'SSH', 'PLUGIN']];
  for (const node of cluster.nodes) {
    const docker = node.dockerSocket === null ? '-' : (await pingDocker(node.dockerSocket)) ? node.dockerHost! : 'DOWN';
    const ssh = node.ssh === null ? '-' : (await canConnect(node.ssh.host, node.ssh.port)) ? node.ssh.hostKeyFingerprint : 'DOWN';
    rows.push([node.name, node.uuid, node.address, node.pool, docker, ssh, node.pluginName]);
  }
  return table(rows);
}

const IMAGES: LocalImage[] = ['busybox', 'redis', 'postgres'];

/** `--images a,b`; null (after saying why) when one is not known. */
function imagesOf(list: string): LocalImage[] | null {
  const images = list.split(',').filter((image) => image.length > 0);
  const unknown = images.filter((image) => !IMAGES.includes(image as LocalImage));
  if (unknown.length > 0) {
    printError(`--images: unknown image ${unknown.join(', ')} (known: ${IMAGES.join(', ')})`);
    return null;
  }
  return images as LocalImage[];
}

async function up(options: { name: string; nodes?: string; subnet?: string; images: string }): Promise<number> {
  const images = imagesOf(options.images);
  if (images === null) return 2;
  // An existing cluster is brought up as it is: its size and subnet unless told otherwise.
  const existing = await readCluster(options.name);
  const { cluster, controlUrl, reused } = await clusterUpWithServices({
    name: options.name,
    nodes: options.nodes !== undefined ? Number(options.nodes) : (existing?.nodes.length ?? 3),
    ...(options.subnet !== undefined ? { subnet: Number(options.subnet) } : {}),
    images,
    // The node table is the output; the log says only what went wrong.
    log: createLogger('drover-cluster', { level: process.env.DROVER_LOG_LEVEL ?? 'warn' }),
  });
  if (reused) print(`cluster ${cluster.name} was already up; started only what was not running`);
  print(await nodeTable(cluster));
  print((await servicesReport(cluster)).text);
  if (controlUrl !== DEFAULT_CONTROL) print(`drover talks to this cluster with --control ${controlUrl} (or DROVER_CONTROL=${controlUrl})`);
  return 0;
}

async function status(name: string): Promise<number> {
  const cluster = await readCluster(name);
  if (cluster === null) {
    print(`no cluster named ${name}`);
    return 1;
  }
  print(await nodeTable(cluster));
  const services = await servicesReport(cluster);
  print(services.text);
  return services.ok ? 0 : 1;
}

/** The command tree; each action stores its exit code in `result.code`. */
function program(result: { code: number; verb: string }): Command {
  const run = (verb: string, action: () => Promise<number>) => async () => {
    result.verb = verb;
    result.code = await action();
  };
  const root = new Command('drover cluster')
    .usage(USAGE)
    .description(DESCRIPTION)
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ styleTitle: (title) => title.toLowerCase() })
    .configureOutput({ writeOut: (text) => print(text.replace(/\n$/, '')), writeErr: printError });
  const name = () => new Option('--name <NAME>', 'the cluster').default('demo');
  const images = () => new Option('--images <LIST>', `images to load, comma-separated (${IMAGES.join(', ')})`).default('busybox');
  const up_ = root
    .command('up')
    .description("bring the cluster up, or repair it: start what is not running, keep pools, node ids and keys")
    .addOption(new Option('--nodes <N>', 'nodes, 1 to 9 (default: the existing cluster\'s, else 3)'))
    .addOption(name())
    .addOption(new Option('--subnet <S>', 'node i gets 127.0.S.(10+i) (default: the existing cluster\'s, else 0)'))
    .addOption(images());
  up_.action(run('up', () => up(up_.opts())));
  const down = root.command('down').description('take the cluster down and remove everything of it, data too').addOption(name());
  down.action(
    run('down', async () => {
      const { name: cluster } = down.opts<{ name: string }>();
      await clusterDown(cluster);
      print(`cluster ${cluster} is down`);
      return 0;
    }),
  );
  const status_ = root.command('status').description('the nodes and processes; exits 1 unless all run and every node is known').addOption(name());
  status_.action(run('status', () => status(status_.opts<{ name: string }>().name)));
  const images_ = root.command('images').description('build the local images (offline) into the image cache').addOption(images());
  images_.action(
    run('images', async () => {
      const list = imagesOf(images_.opts<{ images: string }>().images);
      if (list === null) return 2;
      const log = createLogger('drover-cluster');
      for (const image of list) print(`${imageTag(image)}  ${await ensureImageArchive(image, log)}`);
      return 0;
    }),
  );
  return root;
}

/**
 * `drover cluster …`; returns the exit code: 0 done, 1 the command failed (or `status`
 * found something down), 2 a usage error.
 */
export async function runClusterCommand(argv: string[]): Promise<number> {
  guardStdout();
  const result = { code: 0, verb: '' };
  try {
    await program(result).parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    printError(`drover cluster ${result.verb}: ${isDroverError(err) ? `${err.message} (${err.code})` : String(err)}`);
    return 1;
  }
}
