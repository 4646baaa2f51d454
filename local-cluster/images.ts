import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import { systemClock } from '#common/clock.ts';
import { isAlive } from './processes.ts';
import { exists } from './files.ts';
import { run } from './run.ts';
import type { LocalImage } from './types.ts';
import { POSTGRES_ENTRY, POSTGRES_ENTRY_PATH } from './postgres-entry.ts';

/**
 * The local test images, built offline and cached as `docker save` archives, so every
 * node's dockerd loads the very same image id in a second or two:
 * - `drover/busybox:latest` — busybox-static and its applet links;
 * - `drover/redis:latest` — a Debian bookworm minbase rootfs made by mmdebstrap from the
 *   machine's own apt sources, with redis-server (appendonly, data in /data).
 * - `drover/postgres:latest` — the same kind of rootfs with Debian's `postgresql`; its entry
 *   script (postgres-entry.ts) runs initdb into /data/pgdata on the first start and turns
 *   SIGTERM into PostgreSQL's fast shutdown (SIGINT), so `docker stop` is not a smart
 *   shutdown waiting for every client to leave.
 * An archive is rebuilt only when missing; bump `version` when a recipe changes.
 */

export const IMAGE_CACHE = process.env.DROVER_IMAGE_CACHE ?? '/var/cache/drover/images';
const HOST_DOCKER = 'unix:///var/run/docker.sock';

interface Recipe {
  tag: string;
  version: number;
  changes: string[];
  buildRootfs: (workDir: string, log: Logger) => Promise<string>;
}

const RECIPES: Record<LocalImage, Recipe> = {
  busybox: {
    tag: 'drover/busybox:latest',
    version: 1,
    changes: ['CMD ["sh"]'],
    buildRootfs: buildBusyboxRootfs,
  },
  redis: {
    tag: 'drover/redis:latest',
    version: 1,
    changes: [
      'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/data"]',
      'EXPOSE 6379',
      'WORKDIR /data',
    ],
    buildRootfs: buildRedisRootfs,
  },
  postgres: {
    tag: 'drover/postgres:latest',
    version: 3,
    changes: [`CMD ["${POSTGRES_ENTRY_PATH}"]`, 'EXPOSE 5432', 'WORKDIR /data'],
    buildRootfs: buildPostgresRootfs,
  },
};

export function imageTag(image: LocalImage): string {
  return RECIPES[image].tag;
}

export function imageArchive(image: LocalImage): string {
  return join(IMAGE_CACHE, `${image}-v${RECIPES[image].version}.tar`);
}

/**
 * Makes sure the archive of `image` is in the cache, building it through the host dockerd
 * when missing. Concurrent callers (other test runs, the demo) wait for one build: a lock
 * directory holds the builder's pid, and a dead builder's lock is taken over. An archive
 * appears under its final name only when complete.
 */
export async function ensureImageArchive(image: LocalImage, log: Logger): Promise<string> {
  const archive = imageArchive(image);
  const lock = `${archive}.lock`;
  const deadline = Date.now() + 30 * 60_000;
  await mkdir(IMAGE_CACHE, { recursive: true });
  while (!(await exists(archive))) {
    if (Date.now() > deadline) {
      throw new DroverError('DROVER_IMAGE_BUILD_TIMEOUT', `gave up waiting for ${lock} (another build of ${image})`);
    }
    try {
      await mkdir(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && isAlive(owner)) {
        await systemClock.sleep(1_000);
      } else if (Date.now() - (await stat(lock).then((s) => s.mtimeMs, () => 0)) > 5_000) {
        await rm(lock, { recursive: true, force: true }); // its builder died
      } else {
        await systemClock.sleep(200); // just taken; the pid is being written
      }
      continue;
    }
    try {
      await writeFile(join(lock, 'pid'), String(process.pid));
      if (!(await exists(archive))) await build(image, archive, log);
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
  return archive;
}

async function build(image: LocalImage, archive: string, log: Logger): Promise<void> {
  const recipe = RECIPES[image];
  // Holding the lock, any earlier work directory of this image is a dead build's.
  for (const entry of await readdir(IMAGE_CACHE)) {
    if (entry.startsWith(`.build-${image}-`)) await rm(join(IMAGE_CACHE, entry), { recursive: true, force: true });
  }
  const work = await mkdtemp(join(IMAGE_CACHE, `.build-${image}-`));
  const started = Date.now();
  try {
    log.info({ image: recipe.tag }, 'image build started');
    const rootfs = await recipe.buildRootfs(work, log);
    const changes = recipe.changes.flatMap((change) => ['--change', change]);
    await run('docker', ['-H', HOST_DOCKER, 'import', ...changes, rootfs, recipe.tag], { timeoutMs: 300_000 });
    const partial = join(work, 'image.tar');
    await run('docker', ['-H', HOST_DOCKER, 'save', '-o', partial, recipe.tag], { timeoutMs: 300_000 });
    await rename(partial, archive);
    log.info({ image: recipe.tag, archive, ms: Date.now() - started }, 'image built');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Loads the cached archives of `images` into the dockerd at `dockerHost` ('unix://…'). */
export async function loadImages(dockerHost: string, images: LocalImage[], log: Logger): Promise<void> {
  for (const image of images) {
    const archive = await ensureImageArchive(image, log);
    await run('docker', ['-H', dockerHost, 'load', '-q', '-i', archive], { timeoutMs: 300_000 });
  }
}

async function buildBusyboxRootfs(work: string): Promise<string> {
  const root = join(work, 'rootfs');
  for (const dir of ['bin', 'etc', 'tmp', 'data', 'root', 'var/www']) await mkdir(join(root, dir), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  const { stdout } = await run('/bin/busybox', ['--list'], { timeoutMs: 10_000 });
  for (const applet of stdout.split('\n').map((line) => line.trim())) {
    if (applet && applet !== 'busybox') await symlink('busybox', join(root, 'bin', applet));
  }
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  const tar = join(work, 'rootfs.tar');
  await run('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.'], { timeoutMs: 60_000 });
  return tar;
}

/** The machine's own apt sources, so no mirror is named here (offline-friendly, proxy-friendly). */
async function hostAptSources(): Promise<string[]> {
  const sources: string[] = [];
  if (await exists('/etc/apt/sources.list')) {
    const { stdout } = await run('grep', ['-c', '^[[:space:]]*deb', '/etc/apt/sources.list'], { reject: false });
    if (Number(stdout) > 0) sources.push('/etc/apt/sources.list');
  }
  const dir = '/etc/apt/sources.list.d';
  const entries = (await exists(dir)) ? await readdir(dir) : [];
  for (const entry of entries.sort()) {
    if (entry.endsWith('.list') || entry.endsWith('.sources')) sources.push(join(dir, entry));
  }
  if (sources.length === 0) {
    throw new DroverError('DROVER_IMAGE_NO_APT_SOURCES', 'no apt sources on this machine: cannot build the redis image');
  }
  return sources;
}

function buildRedisRootfs(work: string, log: Logger): Promise<string> {
  return debianRootfs(work, log, 'redis-server', []);
}

async function buildPostgresRootfs(work: string, log: Logger): Promise<string> {
  const entry = join(work, 'drover-postgres');
  await writeFile(entry, POSTGRES_ENTRY, { mode: 0o755 });
  return debianRootfs(work, log, 'postgresql', [
    `--customize-hook=copy-in ${entry} /usr/local/bin`,
    `--customize-hook=chmod 755 "$1${POSTGRES_ENTRY_PATH}"`,
    // The cluster Debian's postinst made in the rootfs: the image's lives on the volume.
    '--customize-hook=rm -rf "$1"/var/lib/postgresql/*/main "$1"/etc/postgresql/*/main',
  ]);
}

/** A Debian bookworm minbase rootfs with `include` installed, as a tar in `work`. */
async function debianRootfs(work: string, log: Logger, include: string, hooks: string[]): Promise<string> {
  const tar = join(work, 'rootfs.tar');
  const sources = await hostAptSources();
  log.info({ sources }, 'mmdebstrap started (a few minutes)');
  await run(
    'mmdebstrap',
    [
      '--variant=minbase',
      `--include=${include}`,
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/locale/*',
      '--dpkgopt=path-exclude=/usr/share/info/*',
      '--customize-hook=mkdir -p "$1/data"',
      ...hooks,
      'bookworm',
      tar,
      ...sources,
    ],
    { timeoutMs: 1_200_000 },
  );
  return tar;
}
