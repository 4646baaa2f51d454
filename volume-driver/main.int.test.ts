/**
 * The real `drover-volume` program (bin/drover-volume.js) as a process, on a socket in a
 * temporary directory (never /run/docker/plugins: no dockerd is involved here): start-up,
 * refusals, and that every way of stopping it leaves no socket behind.
 */
import { existsSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '#common/clock.ts';

const bin = resolve(import.meta.dirname, '../bin/drover-volume.js');
const UUID = '11111111-1111-4111-8111-111111111111';
let dir: string;
const started: ResultPromise[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-volume-main-'));
});
afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null) child.kill('SIGKILL');
    await child;
  }
  await rm(dir, { recursive: true, force: true });
});

function plugin(...extra: string[]): ResultPromise {
  // The control service is deliberately absent: Activate must not depend on it.
  const args = ['--name', 'drover-t', '--control', 'http://127.0.0.1:9', '--node-uuid', UUID, '--state-dir', join(dir, 'state'), '--socket-dir', dir, ...extra];
  const child = execa('node', [bin, ...args], { reject: false, env: { DROVER_LOG_LEVEL: 'warn' } });
  started.push(child);
  return child;
}

const socket = () => join(dir, 'drover-t.sock');

async function listening(child: ResultPromise): Promise<void> {
  for (let i = 0; i < 150 && child.exitCode === null && !existsSync(socket()); i++) await systemClock.sleep(100);
  expect(existsSync(socket())).toBe(true);
}

function activate(): Promise<string> {
  return new Promise((resolveAnswer, reject) => {
    const s = connect({ path: socket() });
    let raw = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (raw += d));
    s.on('error', reject);
    s.on('end', () => resolveAnswer(raw.split('\r\n\r\n')[1] ?? ''));
    s.write('POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
}

describe('drover-volume, the program', () => {
  it('answers Plugin.Activate while the control service is unreachable, and removes its socket on SIGTERM', async () => {
    const child = plugin();
    await listening(child);
    expect(JSON.parse(await activate())).toEqual({ Implements: ['VolumeDriver'] });
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
    expect(existsSync(socket())).toBe(false);
  });

  it('removes its socket on SIGINT too', async () => {
    const child = plugin();
    await listening(child);
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(0);
    expect(existsSync(socket())).toBe(false);
  });

  it('removes its socket when stopped the instant the socket appears, before it has finished starting', async () => {
    // Three starts, each signalled as soon as the socket's name shows in the directory.
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGTERM'] as const) {
      const seen = new Promise<void>((resolveSeen) => {
        const watcher = watch(dir, (_event, file) => {
          if (file !== 'drover-t.sock') return;
          watcher.close();
          resolveSeen();
        });
      });
      const child = plugin();
      await Promise.race([seen, child]);
      child.kill(signal);
      const result = await child;
      expect({ signal, exitCode: result.exitCode, socketLeft: existsSync(socket()) }).toEqual({ signal, exitCode: 0, socketLeft: false });
    }
  });

  it('refuses to start while another plugin answers on its socket, and leaves that one running', async () => {
    const first = plugin();
    await listening(first);
    const second = await plugin();
    expect(second.exitCode).toBe(2);
    expect(second.stderr).toContain(`another plugin already answers on ${socket()}; stop it or choose another --name`);
    expect(JSON.parse(await activate())).toEqual({ Implements: ['VolumeDriver'] });
  });

  it('starts over the stale socket a killed plugin left behind', async () => {
    const first = plugin();
    await listening(first);
    first.kill('SIGKILL');
    await first;
    expect(existsSync(socket())).toBe(true);
    const second = plugin();
    for (let i = 0; i < 150 && second.exitCode === null; i++) {
      if (await activate().then(() => true, () => false)) break;
      await systemClock.sleep(100);
    }
    expect(JSON.parse(await activate())).toEqual({ Implements: ['VolumeDriver'] });
  });

  it('stops with exit code 2 and names the flag when a flag is wrong', async () => {
    const noName = await execa('node', [bin, '--control', 'http://127.0.0.1:9', '--node-uuid', UUID], { reject: false });
    expect(noName.exitCode).toBe(2);
    expect(noName.stderr).toContain('--name is required');
    const badUuid = await plugin('--node-uuid', 'nope');
    expect(badUuid.exitCode).toBe(2);
    expect(badUuid.stderr).toContain('node uuid "nope" is not a lower-case UUID');
    const badTimeout = await plugin('--mount-timeout', '200');
    expect(badTimeout.stderr).toContain('--mount-timeout must be between 1 and 110 seconds');
    expect(existsSync(socket())).toBe(false);
  });
});
