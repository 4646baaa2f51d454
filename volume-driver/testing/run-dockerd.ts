/**
 * A private dockerd for the plugin's integration test (never the host's: a plugin Docker
 * has used stays cached in that dockerd until it restarts). Own data root, exec root, pid
 * file and socket, no bridge, no iptables; a tiny busybox image imported from the host's
 * static busybox, with a file at /data so `docker create` copies it into a volume.
 *
 * XXX: stands in for cli/local-cluster's dockerd until the harness lands.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { sleep } from '#common/sleep.ts';

export interface TestDockerd {
  socket: string;
  image: string;
  /** Runs the docker CLI against this dockerd; resolves with trimmed stdout, rejects on failure. */
  docker(...args: string[]): Promise<string>;
  /** Runs a docker command that must fail; resolves with its stderr. */
  dockerFails(...args: string[]): Promise<string>;
  cleanContainersAndVolumes(): Promise<void>;
  stop(): Promise<void>;
}

/** null when this machine can run a private dockerd, else why not. */
export function canRunDockerd(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  for (const bin of ['dockerd', 'docker', 'busybox']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed`;
    }
  }
  return null;
}

let started = 0;

export async function startDockerd(dir: string, options: { image?: boolean } = {}): Promise<TestDockerd> {
  const socket = join(dir, 'docker.sock');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const tag = `dv${process.pid}-${++started}`;
  const child: ResultPromise = execa(
    'dockerd',
    [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${socket}`,
      '--bridge=none', '--iptables=false', '--ip-masq=false',
      '--containerd-namespace', tag, '--containerd-plugins-namespace', `${tag}p`,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'], reject: false },
  );
  const docker = async (...args: string[]): Promise<string> => {
    const result = await execa('docker', ['-H', `unix://${socket}`, ...args], { timeout: 120_000 });
    return result.stdout.trim();
  };
  const dockerFails = async (...args: string[]): Promise<string> => {
    const result = await execa('docker', ['-H', `unix://${socket}`, ...args], { timeout: 120_000, reject: false });
    if (result.exitCode === 0) throw new Error(`docker ${args.join(' ')} succeeded but should have failed`);
    return result.stderr.trim();
  };
  for (let i = 0; ; i++) {
    if (existsSync(socket) && (await docker('version', '--format', '{{.Server.Version}}').catch(() => ''))) break;
    if (i > 120 || (child.exitCode !== undefined && child.exitCode !== null)) throw new Error(`dockerd in ${dir} did not start`);
    await sleep(250);
  }

  const image = `drover-test/busybox:${tag}`;
  if (options.image !== false) await importBusybox(dir, socket, image);

  return {
    socket,
    image,
    docker,
    dockerFails,
    async cleanContainersAndVolumes() {
      const ids = (await docker('ps', '-aq')).split('\n').filter(Boolean);
      if (ids.length) await docker('rm', '-f', ...ids);
      const volumes = (await docker('volume', 'ls', '-q')).split('\n').filter(Boolean);
      for (const v of volumes) await docker('volume', 'rm', v).catch(() => undefined);
    },
    async stop() {
      child.kill('SIGTERM');
      const exited = await Promise.race([child.then(() => true), sleep(30_000).then(() => false)]);
      if (!exited) {
        child.kill('SIGKILL');
        await child;
      }
    },
  };
}

/** A tiny image from the host's static busybox, with a file at /data for the create-time copy. */
async function importBusybox(dir: string, socket: string, image: string): Promise<void> {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'data'), { recursive: true });
  copyFileSync(execFileSync('sh', ['-c', 'command -v busybox']).toString().trim(), join(rootfs, 'bin', 'busybox'));
  for (const cmd of ['sh', 'true', 'cat', 'ls', 'echo', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', cmd));
  writeFileSync(join(rootfs, 'data', 'seed.txt'), 'seeded\n');
  await execa('tar', ['-C', rootfs, '-c', '.']).pipe('docker', ['-H', `unix://${socket}`, 'import', '-c', 'CMD ["/bin/sh"]', '-', image]);
}
