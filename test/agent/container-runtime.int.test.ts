/**
 * The dockerode adapter (convergence-agent/docker.ts) on the host's own dockerd, held to the
 * same contract as the fake the agent's unit tests run on (convergence-agent/testing/fake-container-runtime.test.ts).
 * Every container carries a fresh node uuid and a `drover-ct<random>-` name; the suite stops
 * and removes them after each test.
 */
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { beforeAll } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { containerRuntimeContract } from '../../convergence-agent/testing/container-runtime.contract.ts';
import { ensureImageArchive, imageTag } from '../../local-cluster/index.ts';
import { describeWith } from '../support/require.ts';

const HOST_DOCKER = 'unix:///var/run/docker.sock';
const docker = (...args: string[]) => execa('docker', ['-H', HOST_DOCKER, ...args], { timeout: 120_000 });

describeWith(['root', 'dockerd'], 'the dockerode adapter on the host dockerd', () => {
  const image = imageTag('busybox');

  beforeAll(async () => {
    // scripts/images.sh builds it through this dockerd; load the cached archive if it went since.
    if ((await docker('image', 'inspect', image).catch(() => null)) === null) {
      await docker('load', '-q', '-i', await ensureImageArchive('busybox', silentLogger()));
    }
  });

  containerRuntimeContract('dockerode on the host dockerd', async () => ({
    runtime: new DockerRuntime({ socketPath: '/var/run/docker.sock', pullTimeoutMs: 5_000 }),
    image,
    hostIp: '127.0.0.1',
    // SIGKILL from outside, as the kernel's OOM killer or a crash would end it (`docker kill`
    // would count as a stop the engine was asked for).
    kill: async (id) => {
      const { stdout } = await docker('inspect', '--format', '{{.State.Pid}}', id);
      process.kill(Number(stdout.trim()), 'SIGKILL');
    },
    runsCommands: true,
    firstProcess: async (id) => {
      const { stdout } = await docker('inspect', '--format', '{{.State.Pid}}', id);
      const pid = Number(stdout.trim());
      // A zombie (exited, not yet reaped by its shim) has made every write it will make.
      const state = (): string | null => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] ?? null;
        } catch {
          return null;
        }
      };
      return { alive: () => pid > 0 && state() !== null && state() !== 'Z' };
    },
  }));
});
