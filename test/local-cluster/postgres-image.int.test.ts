/**
 * The local drover/postgres image (local-cluster/images.ts, postgres-entry.ts) on the host's
 * dockerd: initdb into the volume on the first start, a fast shutdown on SIGTERM even with a
 * client connected (PostgreSQL's own SIGTERM would wait for it), and the data there after a
 * restart. The container and its data directory are removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { ensureImageArchive, imageTag } from '../../local-cluster/index.ts';
import { describeWith } from '../support/require.ts';

const HOST_DOCKER = 'unix:///var/run/docker.sock';
const docker = (...args: string[]) => execa('docker', ['-H', HOST_DOCKER, ...args], { timeout: 300_000, reject: false });

describeWith(['root', 'dockerd'], 'the local drover/postgres image', () => {
  const name = `drover-pgimg-${randomBytes(4).toString('hex')}`;
  let data = '';
  const psql = (sql: string) => docker('exec', name, 'psql', '-h', '127.0.0.1', '-U', 'postgres', '-tAq', '-c', sql);
  const ready = async () => {
    await expect.poll(async () => (await docker('exec', name, 'pg_isready', '-h', '127.0.0.1', '-q')).exitCode, { timeout: 90_000, interval: 100 }).toBe(0);
  };

  beforeAll(async () => {
    if ((await docker('image', 'inspect', imageTag('postgres'))).exitCode !== 0) {
      expect((await docker('load', '-q', '-i', await ensureImageArchive('postgres', silentLogger()))).exitCode).toBe(0);
    }
    data = await mkdtemp(join(tmpdir(), 'drover-pgimg-'));
    await chmod(data, 0o755); // as a dataset's mountpoint: the postgres user must reach /data/pgdata
  }, 1_800_000);
  afterAll(async () => {
    await docker('rm', '-f', name);
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('initialises the volume on first start, shuts down fast on SIGTERM with a client connected, and keeps the data', async () => {
    expect((await docker('run', '-d', '--name', name, '-v', `${data}:/data`, imageTag('postgres'))).exitCode).toBe(0);
    await ready();
    expect((await psql('CREATE TABLE t (v text); INSERT INTO t VALUES (\'kept\')')).exitCode).toBe(0);
    // A client in the middle of a long query: a smart shutdown would wait for it.
    const busy = docker('exec', name, 'psql', '-h', '127.0.0.1', '-U', 'postgres', '-c', 'SELECT pg_sleep(60)');
    await expect.poll(async () => (await psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")).stdout.trim(), { timeout: 10_000 }).toBe('1');
    const t0 = Date.now();
    expect((await docker('stop', '-t', '30', name)).exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await busy;
    expect((await docker('inspect', '-f', '{{.State.ExitCode}}', name)).stdout.trim()).toBe('0');
    expect((await docker('logs', name)).stderr).toMatch(/received fast shutdown request/);

    expect((await docker('start', name)).exitCode).toBe(0);
    await ready();
    expect((await psql('SELECT v FROM t')).stdout.trim()).toBe('kept');
  }, 400_000);
});
