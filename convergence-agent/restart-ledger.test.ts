import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RestartLedger } from './restart-ledger.ts';

describe('restart ledger', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps restart counts across an agent restart, and forgets containers that are gone', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-ledger-'));
    const file = join(dir, 'state', 'restarts.json');
    const first = new RestartLedger(file);
    first.recordRestart('c1', 1);
    first.recordRestart('c1', 2);
    first.recordRestart('c2', 1);
    expect(new RestartLedger(file).get('c1')).toEqual({ restarts: 2, consecutive: 2 });
    first.retain(['c1']);
    expect(new RestartLedger(file).get('c2')).toEqual({ restarts: 0, consecutive: 0 });
  });

  it('starts from zero when its file is damaged', async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-ledger-'));
    const file = join(dir, 'restarts.json');
    await writeFile(file, '{not json');
    expect(new RestartLedger(file).get('c1')).toEqual({ restarts: 0, consecutive: 0 });
  });
});
