/**
 * Test fixture (tests only): a VolumeDriver on the in-memory control service, with its
 * mount state in a temporary directory that `cleanup` removes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '#common/clock.ts';
import { silentLogger } from '#common/log.ts';
import { VolumeDriver } from '../driver.ts';
import { FakeControl } from './fake-control.ts';
import { MountStore } from '../mount-store.ts';

export const ME = '11111111-1111-4111-8111-111111111111';
export const OTHER = '22222222-2222-4222-8222-222222222222';
export const NODES = [
  { uuid: ME, host: '127.0.0.11' },
  { uuid: OTHER, host: '127.0.0.12' },
];
const dirs: string[] = [];

export async function cleanup(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

export async function setup(options: { moves?: 'instant' | 'manual'; mountTimeoutMs?: number; stateDir?: string; control?: FakeControl; clock?: Clock } = {}) {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'drover-driver-')));
  dirs.push(stateDir);
  const control = options.control ?? new FakeControl({ nodes: NODES, moves: options.moves ?? 'instant' });
  const store = await MountStore.open(stateDir);
  const driver = new VolumeDriver({ control, store, nodeUuid: ME, log: silentLogger(), mountTimeoutMs: options.mountTimeoutMs ?? 2_000, pollMs: 20, othersWaitMs: 300, ...(options.clock ? { clock: options.clock } : {}) });
  return { driver, control, store, stateDir };
}

/** The message a promise rejects with ('no error' when it resolves). */
export function errorOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'no error',
    (e: Error) => e.message,
  );
}
