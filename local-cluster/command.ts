import { parseArgs } from 'node:util';
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

const USAGE = `usage: drover cluster up [--nodes N] [--name NAME] [--subnet S] [--images busybox,redis]
       drover cluster down [--name NAME]
       drover cluster status [--name NAME]
       drover cluster images [--images busybox,redis]

A local cluster plays a whole drover cluster on this machine (root needed): node i gets
the address 127.0.S.(10+i), a zfs-fuse pool, an sshd and a dockerd, and drover's own
processes: a control service (127.0.0.1:4523 for demo, else 127.0.S.11:4523) and per
node an agent, a proxy and a volume plugin. NAME defaults to demo. 'up' keeps a running
cluster of that name and size; 'status' exits 1 unless every process runs and every node
is known; 'down' removes everything.
'images' builds the local images once (offline) into ${IMAGE_CACHE}.`;

function print(text: string): void {
  process.stdout.write(`${text}\n`);
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

const IMAGES: LocalImage[] = ['busybox', 'redis'];

/** `drover cluster …`; returns the exit code. */
export async function runClusterCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string', default: 'demo' },
        nodes: { type: 'string', default: '3' },
        subnet: { type: 'string', default: '0' },
        images: { type: 'string', default: 'busybox' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const verb = positionals[0];
  if (values.help || verb === undefined || positionals.length > 1) {
    (values.help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const images = values.images.split(',').filter((image) => image.length > 0);
  const unknown = images.filter((image) => !IMAGES.includes(image as LocalImage));
  if (unknown.length > 0) {
    process.stderr.write(`--images: unknown image ${unknown.join(', ')} (known: ${IMAGES.join(', ')})\n`);
    return 2;
  }
  try {
    switch (verb) {
      case 'up': {
        const { cluster, controlUrl, reused } = await clusterUpWithServices({
          name: values.name,
          nodes: Number(values.nodes),
          subnet: Number(values.subnet),
          images: images as LocalImage[],
          // The node table is the output; the log says only what went wrong.
          log: createLogger('drover-cluster', { level: process.env.DROVER_LOG_LEVEL ?? 'warn' }),
        });
        if (reused) print(`cluster ${cluster.name} was already up; started only what was not running`);
        print(await nodeTable(cluster));
        print((await servicesReport(cluster)).text);
        if (controlUrl !== DEFAULT_CONTROL) print(`drover talks to this cluster with --control ${controlUrl} (or DROVER_CONTROL=${controlUrl})`);
        return 0;
      }
      case 'down':
        await clusterDown(values.name);
        print(`cluster ${values.name} is down`);
        return 0;
      case 'images': {
        const log = createLogger('drover-cluster');
        for (const image of images as LocalImage[]) print(`${imageTag(image)}  ${await ensureImageArchive(image, log)}`);
        return 0;
      }
      case 'status': {
        const cluster = await readCluster(values.name);
        if (cluster === null) {
          print(`no cluster named ${values.name}`);
          return 1;
        }
        print(await nodeTable(cluster));
        const services = await servicesReport(cluster);
        print(services.text);
        return services.ok ? 0 : 1;
      }
      default:
        process.stderr.write(`unknown command 'cluster ${verb}'\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(`drover cluster ${verb}: ${isDroverError(err) ? `${err.message} (${err.code})` : String(err)}\n`);
    return 1;
  }
}
