import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StepJournal, type StepRecord } from './journal.ts';

const record: StepRecord = {
  version: 1, datasetId: '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b', peerId: 'node-2', phase: 'sending',
  snapshot: 'drover-b', snapshotGuid: '18446744073709551615', base: 'drover-a', startedAt: 1, pid: 42,
};

describe('the step journal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'drover-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads back what it wrote, per peer and dataset, and nothing after clearing', async () => {
    const journal = new StepJournal(join(dir, 'transfer'));
    expect(await journal.read('node-2', record.datasetId)).toBeNull();
    await journal.write(record);
    await journal.write({ ...record, peerId: 'node-3', phase: 'snapshotted' });
    expect(await journal.read('node-2', record.datasetId)).toEqual(record);
    expect((await journal.read('node-3', record.datasetId))?.phase).toBe('snapshotted');
    await journal.clear('node-2', record.datasetId);
    await journal.clear('node-2', record.datasetId);
    expect(await journal.read('node-2', record.datasetId)).toBeNull();
  });

  it('leaves no temporary file behind after a write', async () => {
    const journal = new StepJournal(dir);
    await journal.write(record);
    await journal.write({ ...record, phase: 'snapshotted' });
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('reports a corrupt record instead of ignoring it', async () => {
    const journal = new StepJournal(dir);
    await journal.write(record);
    const [file] = await readdir(dir);
    await writeFile(join(dir, file!), '{"version":1}');
    await expect(journal.read('node-2', record.datasetId)).rejects.toMatchObject({ code: 'DROVER_TRANSFER_JOURNAL_CORRUPT' });
  });
});
