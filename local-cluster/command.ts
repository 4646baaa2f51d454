import { Command, CommanderError, Option } from 'commander';
import { isDroverError } from '#common/errors.ts';
import { createLogger } from '#common/log.ts';
import { DroverError } from '#common/errors.ts';
import { clusterDown, readCluster } from './cluster.ts';
import { healNode, killNode, nodeOf, partitionNode } from './failures.ts';
import { isPartitioned, netnsName } from './netns.ts';
import { ensureImageArchive, IMAGE_CACHE, imageTag } from './images.ts';
import { canConnect, pingDocker } from './readiness.ts';
import { servicesReport } from './services.ts';
import { clusterUpWithServices } from './services-up.ts';
import { prometheusPaths, startPrometheus } from './prometheus.ts';
import type { LocalCluster, LocalImage } from './types.ts';
import { clientConfigPath, removeContext, saveContext } from '#common/client-config.ts';
import { OPERATOR, operatorFiles } from './certs.ts';

/** The CLI's default --control: the control service of the cluster `demo`. */
const DEFAULT_CONTROL = 'https://127.0.0.1:4523';

const USAGE = `up [--nodes N] [--name NAME] [--subnet S] [--images busybox,redis] [--isolate] [--metrics] [--control 1|3|5]
       drover cluster down [--name NAME]
       drover cluster kill|partition <node> [--name NAME]
       drover cluster heal [<node>] [--name NAME]
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
  "With --control 3 (or 5) the cluster has that many control services on an etcd cluster of as many members " +
    "(Debian's etcd-server), one of them leader; control service j and etcd member j listen on 127.0.0.j for demo, else " +
    "127.0.S.(10+j) (etcd on port 12379), and every agent, proxy, plugin and the CLI context know them all. The default is " +
    'one control service on the file store.',
  "With --isolate every node runs in its own network namespace (address 10.229.S.(10+i) on a bridge, the control " +
    "service on 10.229.S.1:4523) and its own mount namespace (its dockerd sees only its own plugin).",
  "'kill' kills every process of a node at once (agent, proxy, plugin, dockerd, its containers, sshd); 'up' brings it " +
    "back. 'partition' (isolated clusters) cuts a node off from the other nodes, the control service and this machine's " +
    "clients while its processes keep running; 'heal' (or 'up') ends it.",
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
  const isolated = cluster.isolated === true;
  const rows = [['NODE', 'UUID', 'ADDRESS', 'POOL', 'DOCKER', 'SSH', 'PLUGIN', ...(isolated ? ['NETWORK'] : [])]];
  for (const node of cluster.nodes) {
    const docker = node.dockerSocket === null ? '-' : (await pingDocker(node.dockerSocket)) ? node.dockerHost! : 'DOWN';
    const partitioned = isolated && (await isPartitioned(cluster.name, node.index));
    const ssh = node.ssh === null ? '-' : partitioned ? 'CUT OFF' : (await canConnect(node.ssh.host, node.ssh.port)) ? node.ssh.hostKeyFingerprint : 'DOWN';
    rows.push([node.name, node.uuid, node.address, node.pool, docker, ssh, node.pluginName, ...(isolated ? [partitioned ? 'PARTITIONED' : `netns ${netnsName(cluster.name, node.index)}`] : [])]);
  }
  return table(rows);
}

const IMAGES: LocalImage[] = ['busybox', 'redis', 'postgres'];

/** `--images a,b`; null (after saying why) when one is not known. */
function imagesOf(list: string, verb: 'up' | 'images'): LocalImage[] | null {
  const images = list.split(',').filter((image) => image.length > 0);
  const unknown = images.filter((image) => !IMAGES.includes(image as LocalImage));
  if (unknown.length > 0) {
    printError(`drover cluster ${verb}: --images: unknown image ${unknown.join(', ')} (known: ${IMAGES.join(', ')})`);
    return null;
  }
  return images as LocalImage[];
}

async function up(options: { name: string; nodes?: string; subnet?: string; images: string; isolate?: boolean; metrics?: boolean; control?: string }): Promise<number> {
  const images = imagesOf(options.images, 'up');
  if (images === null) return 2;
  // An existing cluster is brought up as it is: its size and subnet unless told otherwise.
  const existing = await readCluster(options.name);
  if (options.control !== undefined && !/^\d+$/.test(options.control)) {
    printError(`drover cluster up: --control: a number of control services (1, 3 or 5), not '${options.control}'`);
    return 2;
  }
  if (options.nodes !== undefined && !/^\d+$/.test(options.nodes)) {
    printError(`drover cluster up: --nodes: a number of nodes (1 to 9), not '${options.nodes}'`);
    return 2;
  }
  if (options.subnet !== undefined && !/^\d+$/.test(options.subnet)) {
    printError(`drover cluster up: --subnet: a number (node i gets 127.0.S.(10+i)), not '${options.subnet}'`);
    return 2;
  }
  const { cluster, controlUrl, controlUrls, reused } = await clusterUpWithServices({
    name: options.name,
    nodes: options.nodes !== undefined ? Number(options.nodes) : (existing?.nodes.length ?? 3),
    ...(options.subnet !== undefined ? { subnet: Number(options.subnet) } : {}),
    images,
    ...(options.isolate === true ? { isolate: true } : {}),
    ...(options.control !== undefined ? { controls: Number(options.control) } : {}),
    // The node table is the output; the log says only what went wrong.
    log: createLogger('drover-cluster', { level: process.env.DROVER_LOG_LEVEL ?? 'warn' }),
  });
  if (reused) print(`cluster ${cluster.name} was already up; started only what was not running`);
  const prometheus = options.metrics ? await startPrometheus(cluster, createLogger('drover-cluster', { level: process.env.DROVER_LOG_LEVEL ?? 'warn' })) : null;
  print(await nodeTable(cluster));
  print((await servicesReport(cluster)).text);
  // The operator's certificate as a context of the CLI's config file (docs/DESIGN.md §23),
  // current for `demo` (the README's commands) or when there is none yet.
  const files = operatorFiles(cluster);
  const configPath = clientConfigPath(process.env);
  const servers = controlUrls.length > 1 ? { servers: controlUrls } : { server: controlUrl };
  await saveContext(configPath, { name: cluster.name, ...servers, ca: files.ca, cert: files.cert, key: files.key }, cluster.name === 'demo');
  print(`context '${cluster.name}' in ${configPath}: ${controlUrls.join(', ')} with the certificate of user '${OPERATOR}' (mutual TLS)`);
  if (prometheus !== null) print(`prometheus ${prometheus} scrapes every drover process of the cluster (data in ${prometheusPaths(cluster.root).data}; removed by down)`);
  if (controlUrl !== DEFAULT_CONTROL || controlUrls.length > 1) print(`drover talks to this cluster with --context ${cluster.name} (or DROVER_CONTEXT=${cluster.name})`);
  return 0;
}

/** The recorded cluster `name`. @throws DROVER_CLUSTER_NOT_FOUND */
async function recorded(name: string): Promise<LocalCluster> {
  const cluster = await readCluster(name);
  if (cluster === null) throw new DroverError('DROVER_CLUSTER_NOT_FOUND', `no local cluster named '${name}' (bring one up with: drover cluster up --name ${name})`, { detail: { name } });
  return cluster;
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
    .addOption(images())
    .addOption(new Option('--isolate', 'each node in its own network and mount namespace (a new cluster; an existing one keeps its mode)'))
    .addOption(new Option('--metrics', "also start Prometheus (Debian's prometheus) scraping every drover process, with drover's alert rules"))
    .addOption(new Option('--control <N>', "control services: 1 (default: one, on the file store), or 3 or 5 on an etcd cluster of as many members (a new cluster; an existing one keeps its count)"));
  up_.action(run('up', () => up(up_.opts())));
  const down = root.command('down').description('take the cluster down and remove everything of it, data too').addOption(name());
  down.action(
    run('down', async () => {
      const { name: cluster } = down.opts<{ name: string }>();
      await clusterDown(cluster);
      await removeContext(clientConfigPath(process.env), cluster);
      print(`cluster ${cluster} is down`);
      return 0;
    }),
  );
  const failure = (verb: string, description: string, action: (cluster: LocalCluster, node: string | undefined) => Promise<string>, optional = false) => {
    const command = root.command(`${verb} ${optional ? '[node]' : '<node>'}`).description(description).addOption(name());
    command.action(
      run(verb, async () => {
        const cluster = await recorded(command.opts<{ name: string }>().name);
        print(await action(cluster, command.args[0]));
        return 0;
      }),
    );
  };
  failure('kill', "kill every process of a node at once (SIGKILL): agent, proxy, plugin, dockerd, its containers, sshd; 'up' brings it back", async (cluster, node) => {
    const { killed } = await killNode(cluster, node!);
    return `${nodeOf(cluster, node!).name} killed (${killed} processes); bring it back with: drover cluster up --name ${cluster.name}`;
  });
  failure('partition', 'cut a node off from the other nodes, the control service and this machine (isolated clusters); its processes keep running', async (cluster, node) => {
    await partitionNode(cluster, node!);
    const { name: partitioned } = nodeOf(cluster, node!);
    return `${partitioned} is partitioned; end it with: drover cluster heal ${partitioned} --name ${cluster.name}`;
  });
  failure('heal', 'end the partition of a node, or of every node', async (cluster, node) => {
    const healed = await healNode(cluster, node);
    return `healed: ${healed.map((n) => n.name).join(', ')}`;
  }, true);
  const status_ = root.command('status').description('the nodes and processes; exits 1 unless all run and every node is known').addOption(name());
  status_.action(run('status', () => status(status_.opts<{ name: string }>().name)));
  const images_ = root.command('images').description('build the local images (offline) into the image cache').addOption(images());
  images_.action(
    run('images', async () => {
      const list = imagesOf(images_.opts<{ images: string }>().images, 'images');
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
