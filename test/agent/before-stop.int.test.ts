/**
 * The move's before_stop hook (convergence-agent/migration/before-stop.ts) on the host's own
 * dockerd: the command runs inside the application's running container, its exit code and
 * timeout are reported, a stopped container is skipped — and nothing ever throws.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import { Application } from '#common/model.ts';
import { DockerRuntime } from '../../convergence-agent/docker.ts';
import { runBeforeStop } from '../../convergence-agent/migration/before-stop.ts';
import { containerSpec } from '../../convergence-agent/plan/container-spec.ts';
import { ensureImageArchive, imageTag } from '../../local-cluster/index.ts';
import { describeWith } from '../support/require.ts';

const HOST_DOCKER = 'unix:///var/run/docker.sock';
const docker = (...args: string[]) => execa('docker', ['-H', HOST_DOCKER, ...args], { timeout: 120_000, reject: false });

describeWith(['root', 'dockerd'], 'the before_stop hook on the host dockerd', () => {
  const runtime = new DockerRuntime({ socketPath: '/var/run/docker.sock', pullTimeoutMs: 5_000 });
  const nodeUuid = randomUUID();
  const app = `hook${randomBytes(4).toString('hex')}`;
  const deps = { nodeUuid, runtime, clock: systemClock, log: silentLogger() };
  let id = '';

  beforeAll(async () => {
    if ((await docker('image', 'inspect', imageTag('busybox'))).exitCode !== 0) {
      await docker('load', '-q', '-i', await ensureImageArchive('busybox', silentLogger()));
    }
    const spec = containerSpec(
      Application.parse({ name: app, image: imageTag('busybox'), command_line: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done'] }),
      { nodeUuid, address: '127.0.0.1', generation: 1, mountpoints: new Map() },
    );
    await runtime.createAndStart(spec);
    id = (await runtime.listContainers(nodeUuid)).find((c) => c.name === `drover-${app}`)!.id;
  });
  afterAll(async () => {
    if (id) {
      await runtime.stop(id, 5).catch(() => undefined);
      await runtime.remove(id).catch(() => undefined);
    }
  });

  it('runs the command inside the running container, as an argv without a shell', async () => {
    const outcome = await runBeforeStop(deps, app, { command: ['sh', '-c', 'echo "$0 $1" > /tmp/hooked', 'no', '$(shell)'], timeout_seconds: 10 });
    expect(outcome).toMatchObject({ outcome: 'ok', exitCode: 0, detail: null });
    expect((await docker('exec', id, 'cat', '/tmp/hooked')).stdout).toBe('no $(shell)');
  });

  it('reports a command that exits non-zero as failed, with its exit code', async () => {
    expect(await runBeforeStop(deps, app, { command: ['sh', '-c', 'exit 3'], timeout_seconds: 10 })).toMatchObject({ outcome: 'failed', exitCode: 3, detail: 'exited with 3' });
  });

  it('gives up on a command that overruns its timeout, within about that timeout', async () => {
    const outcome = await runBeforeStop(deps, app, { command: ['sleep', '30'], timeout_seconds: 1 });
    expect(outcome).toMatchObject({ outcome: 'failed', exitCode: null });
    expect(outcome.detail).toMatch(/did not finish within 1000 ms/);
    expect(outcome.ms).toBeLessThan(5_000);
  });

  it('skips the hook when the container is not running, and when it is not there', async () => {
    expect(await runBeforeStop(deps, `${app}-missing`, { command: ['true'], timeout_seconds: 5 })).toMatchObject({ outcome: 'skipped', detail: 'the container is not running' });
    await runtime.stop(id, 5);
    expect(await runBeforeStop(deps, app, { command: ['true'], timeout_seconds: 5 })).toMatchObject({ outcome: 'skipped' });
  });
});
