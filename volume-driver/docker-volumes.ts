/**
 * The plugin's one look at its own dockerd (the adapter: `node:http` over Docker's socket,
 * nothing above it reads Docker's answers): which of this plugin's volumes a container
 * still uses. Docker never replays Mounts to a plugin and gives up on Unmounts it could not
 * deliver, so this is how counts left by a container that stopped while the plugin was down
 * are found (driver.ts `reconcileMounts`).
 */
import { request } from 'node:http';
import { DroverError } from '#common/errors.ts';

export interface DockerVolumes {
  /**
   * The names of this plugin's volumes that a running, paused or restarting container
   * mounts. A stopped container holds no mount: Docker unmounts at stop.
   * @throws DroverError DROVER_DOCKER_UNAVAILABLE (retryable) when dockerd does not answer.
   */
  inUse(): Promise<ReadonlySet<string>>;
}

interface ContainerSummary {
  State?: string;
  Mounts?: { Type?: string; Name?: string; Driver?: string }[];
}

const HOLDING = new Set(['running', 'paused', 'restarting']);

/** Docker's Engine API on a unix socket (`/var/run/docker.sock` by default). */
export class SocketDockerVolumes implements DockerVolumes {
  constructor(
    private readonly socketPath: string,
    /** The plugin's name: the `Driver` of its volumes' mounts. */
    private readonly driver: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async inUse(): Promise<ReadonlySet<string>> {
    return volumesInUse(JSON.parse(await this.get('/containers/json?all=1')) as ContainerSummary[], this.driver);
  }

  private get(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const fail = (message: string, cause?: unknown) =>
        reject(new DroverError('DROVER_DOCKER_UNAVAILABLE', `dockerd at ${this.socketPath}: ${message}`, { retryable: true, cause, detail: { socket: this.socketPath } }));
      const req = request({ socketPath: this.socketPath, path, method: 'GET', timeout: this.timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : fail(`GET ${path} answered ${res.statusCode}`)));
        res.on('error', (err) => fail(err.message, err));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => fail(err.message, err));
      req.end();
    });
  }
}

/** Pure: the volumes of `driver` that containers holding mounts use, from `GET /containers/json?all=1`. */
export function volumesInUse(containers: readonly ContainerSummary[], driver: string): Set<string> {
  const names = new Set<string>();
  for (const c of containers) {
    if (!HOLDING.has(c.State ?? '')) continue;
    for (const m of c.Mounts ?? []) if (m.Type === 'volume' && m.Driver === driver && m.Name) names.add(m.Name);
  }
  return names;
}
