import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { LocalPeer } from '../transfer/local-peer.ts';
import { RecordingRunner, type CommandRunner } from '../zfs/command.ts';
import { ZfsStore } from '../zfs/zfs.ts';
import { answerRequest, receiveOnce, serveSession, type ReceiveSide } from './serve.ts';

const ID = '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b';

/** A runner that answers every command with "exit 0, no output" and records what would have run. */
function side(): { side: ReceiveSide; runner: RecordingRunner } {
  const ok: CommandRunner = {
    run: async () => ({ exitCode: 0, signal: null, stdout: '', stderr: '' }),
    spawn: () => ({ pid: 1, stdin: null, stdout: null, exited: Promise.resolve({ exitCode: 0, signal: null, stdout: '', stderr: '' }), kill: () => {} }),
  };
  const runner = new RecordingRunner(ok);
  const store = new ZfsStore({ pool: 'tank', runner });
  return { side: { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() }, runner };
}

describe('drover-receive', () => {
  it('refuses another pool, a dataset outside drover/, foreign snapshots and unknown verbs before any zfs command runs', async () => {
    const { side: s, runner } = side();
    const refusals = [
      { id: 1, op: 'getDataset', pool: 'other', datasetId: ID },
      { id: 2, op: 'getDataset', pool: 'tank', datasetId: '../etc' },
      { id: 3, op: 'hold', pool: 'tank', datasetId: ID, snapshot: 'manual', tag: 'drover-base' },
      { id: 4, op: 'release', pool: 'tank', datasetId: ID, snapshot: 'drover-a', tag: 'keep' },
      { id: 5, op: 'destroy', pool: 'tank', datasetId: ID },
      { id: 6, op: 'rollback', pool: 'tank', datasetId: ID, snapshot: 'drover-$(id)' },
      'not even an object',
    ];
    for (const request of refusals) {
      const answer = await answerRequest(s, request);
      expect(answer.ok, JSON.stringify(request)).toBe(false);
      expect((answer as { error: { code: string } }).error.code).toMatch(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/);
    }
    expect(runner.calls).toEqual([]);
  });

  it('runs an accepted request as zfs argv in its own pool', async () => {
    const { side: s, runner } = side();
    expect(await answerRequest(s, { id: 7, op: 'hold', pool: 'tank', datasetId: ID, snapshot: 'drover-a', tag: 'drover-base' })).toEqual({ id: 7, ok: true, value: null });
    expect(runner.calls.at(-1)).toEqual({ file: 'zfs', args: ['hold', 'drover-base', `tank/drover/${ID}@drover-a`] });
  });

  it('answers getState (the dataset and its drover snapshots) from one zfs command, and a missing dataset as null and []', async () => {
    const snap = 'drover-20260101T000000000Z-0001';
    const out = [
      ...['type\tfilesystem', 'mountpoint\t/m', 'mounted\tno', 'readonly\ton', 'drover:readonly\ton', 'refquota\t0', 'used\t1', 'referenced\t1'].map((l) => `tank/drover/${ID}\t${l}\n`),
      ...['type\tsnapshot', 'guid\t123', 'createtxg\t7', 'userrefs\t1'].map((l) => `tank/drover/${ID}@${snap}\t${l}\n`),
      ...['type\tsnapshot', 'guid\t124', 'createtxg\t8', 'userrefs\t0'].map((l) => `tank/drover/${ID}@manual\t${l}\n`),
    ].join('');
    let missing = false;
    const fake: CommandRunner = {
      run: async (_file, args) => (missing && args[4] !== 'name' ? { exitCode: 1, signal: null, stdout: '', stderr: `cannot open 'tank/drover/${ID}': dataset does not exist\n` } : { exitCode: 0, signal: null, stdout: out, stderr: '' }),
      spawn: () => { throw new Error('no spawn'); },
    };
    const runner = new RecordingRunner(fake);
    const store = new ZfsStore({ pool: 'tank', runner });
    const s: ReceiveSide = { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() };
    const answer = await answerRequest(s, { id: 1, op: 'getState', pool: 'tank', datasetId: ID });
    expect(answer).toMatchObject({ ok: true, value: { dataset: { datasetId: ID, readonly: true, mounted: false }, snapshots: [{ snapshot: snap, guid: '123', createtxg: 7, userrefs: 1 }] } });
    expect((answer as { value: { snapshots: unknown[] } }).value.snapshots).toHaveLength(1); // not `manual`: not drover's
    expect(runner.calls).toEqual([{ file: 'zfs', args: ['get', '-Hp', '-d', '1', '-o', 'name,property,value', 'type,mountpoint,mounted,readonly,drover:readonly,refquota,used,referenced,guid,createtxg,userrefs', `tank/drover/${ID}`] }]);
    missing = true;
    expect(await answerRequest(s, { id: 2, op: 'getState', pool: 'tank', datasetId: ID })).toMatchObject({ ok: true, value: { dataset: null, snapshots: [] } });
    runner.calls.length = 0;
    expect(await answerRequest(s, { id: 3, op: 'getState', pool: 'other', datasetId: ID })).toMatchObject({ ok: false, error: { code: 'DROVER_SSH_RECEIVE_REFUSED' } });
    expect(await answerRequest(s, { id: 4, op: 'getState', pool: 'tank', datasetId: '../etc' })).toMatchObject({ ok: false });
    expect(runner.calls).toEqual([]);
  });

  it('never rolls back a writable dataset (a primary), whatever the sender asks', async () => {
    const listing = (readonly: 'on' | 'off') =>
      ['type\tfilesystem', 'mountpoint\t/m', 'mounted\tyes', `readonly\t${readonly}`, `drover:readonly\t${readonly}`, 'refquota\t0', 'used\t1', 'referenced\t1'].map((l) => `tank/drover/${ID}\t${l}\n`).join('');
    for (const readonly of ['off', 'on'] as const) {
      const fake: CommandRunner = {
        run: async (_file, args) => ({ exitCode: 0, signal: null, stdout: args[0] === 'get' && args.includes('type,mountpoint,mounted,readonly,drover:readonly,refquota,used,referenced') ? listing(readonly) : '', stderr: '' }),
        spawn: () => { throw new Error('no spawn'); },
      };
      const runner = new RecordingRunner(fake);
      const store = new ZfsStore({ pool: 'tank', runner });
      const s: ReceiveSide = { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() };
      const answer = await answerRequest(s, { id: 1, op: 'rollback', pool: 'tank', datasetId: ID, snapshot: 'drover-a' });
      const rolledBack = runner.calls.some((c) => c.args[0] === 'rollback');
      if (readonly === 'off') {
        expect(answer).toMatchObject({ ok: false, error: { code: 'DROVER_SSH_RECEIVE_REFUSED' } });
        expect(rolledBack).toBe(false);
      } else {
        expect(answer).toMatchObject({ ok: true });
        expect(rolledBack).toBe(true);
      }
    }
  });

  it('sets aside only a read-only copy (a diverged replica), by renaming it whole, never a writable dataset', async () => {
    const listing = (readonly: 'on' | 'off') =>
      ['type\tfilesystem', 'mountpoint\t/m', 'mounted\tno', `readonly\t${readonly}`, `drover:readonly\t${readonly}`, 'refquota\t0', 'used\t1', 'referenced\t1'].map((l) => `tank/drover/${ID}\t${l}\n`).join('');
    for (const readonly of ['off', 'on'] as const) {
      const fake: CommandRunner = {
        run: async (_file, args) => ({ exitCode: 0, signal: null, stdout: args[0] === 'get' && args.includes('type,mountpoint,mounted,readonly,drover:readonly,refquota,used,referenced') ? listing(readonly) : '', stderr: '' }),
        spawn: () => { throw new Error('no spawn'); },
      };
      const runner = new RecordingRunner(fake);
      const store = new ZfsStore({ pool: 'tank', runner });
      const s: ReceiveSide = { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() };
      const answer = await answerRequest(s, { id: 1, op: 'setAside', pool: 'tank', datasetId: ID, generation: 4 });
      const renames = runner.calls.filter((c) => c.args[0] === 'rename').map((c) => c.args.slice(1));
      expect(runner.calls.some((c) => c.args[0] === 'destroy')).toBe(false);
      if (readonly === 'off') {
        expect(answer).toMatchObject({ ok: false, error: { code: 'DROVER_TRANSFER_TARGET_WRITABLE' } });
        expect(renames).toEqual([]);
      } else {
        expect(answer).toMatchObject({ ok: true, value: `tank/drover-diverged/${ID}-g4` });
        expect(renames).toEqual([[`tank/drover/${ID}`, `tank/drover-diverged/${ID}-g4`]]);
      }
    }
  });

  it('answers a session line by line, in order, until its input ends', async () => {
    const { side: s } = side();
    const input = new PassThrough();
    const out: string[] = [];
    const served = serveSession(s, input, (t) => out.push(t));
    input.write('{"id":1,"op":"prepare","pool":"tank"}\n{"id":2,"op":"getDataset","pool":"x","datasetId":"');
    input.end(`${ID}"}\ngarbage\n`);
    await served;
    expect(out.map((l) => JSON.parse(l))).toMatchObject([{ id: 1, ok: true }, { id: 2, ok: false, error: { code: 'DROVER_SSH_RECEIVE_REFUSED' } }, { ok: false }]);
  });

  it("runs a step's reads beside each other, and a write only after every earlier request, a read only after every earlier write", async () => {
    const log: string[] = [];
    const gates = new Map<string, () => void>();
    const slow: CommandRunner = {
      run: (_file, args) => {
        const verb = args[0] === 'get' ? (args.includes('-d') ? 'list' : 'get') : String(args[0]);
        // `<pool>/drover` made by the release's step: not what this test watches.
        if (verb !== 'get' && verb !== 'list' && verb !== 'release') return Promise.resolve({ exitCode: 0, signal: null, stdout: '', stderr: '' });
        log.push(`start ${verb}`);
        return new Promise((resolve) => gates.set(verb, () => (log.push(`end ${verb}`), resolve({ exitCode: 0, signal: null, stdout: '', stderr: '' }))));
      },
      spawn: () => { throw new Error('no spawn'); },
    };
    const store = new ZfsStore({ pool: 'tank', runner: slow });
    const s: ReceiveSide = { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() };
    const input = new PassThrough();
    const out: string[] = [];
    const served = serveSession(s, input, (t) => out.push(t));
    const tick = () => new Promise((r) => setTimeout(r, 20));
    input.write(`{"id":1,"op":"getDataset","pool":"tank","datasetId":"${ID}"}\n{"id":2,"op":"listSnapshots","pool":"tank","datasetId":"${ID}"}\n`);
    input.write(`{"id":3,"op":"release","pool":"tank","datasetId":"${ID}","snapshot":"drover-a","tag":"drover-base"}\n{"id":4,"op":"listSnapshots","pool":"tank","datasetId":"${ID}"}\n`);
    await tick();
    // Both reads run at once; the release waits for them.
    expect(log).toEqual(['start get', 'start list']);
    gates.get('list')!();
    await tick();
    expect(log).toEqual(['start get', 'start list', 'end list']);
    gates.get('get')!();
    await tick();
    expect(log.slice(3)).toEqual(['end get', 'start release']);
    // The read after the release waits for it.
    gates.get('release')!();
    await tick();
    expect(log.slice(5)).toEqual(['end release', 'start list']);
    gates.get('list')!();
    input.end();
    await served;
    expect(out.map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([2, 1, 3, 4]);
  });

  it('refuses a receive into another pool or outside the namespace without starting zfs or saying ready', async () => {
    for (const header of [{ op: 'receive', pool: 'other', datasetId: ID, resumable: false, full: true }, { op: 'receive', pool: 'tank', datasetId: 'x/../y', resumable: false, full: true }, { op: 'exec', argv: ['id'] }]) {
      const { side: s, runner } = side();
      const written: string[] = [];
      const status = await receiveOnce(s, { readHeader: () => JSON.stringify(header), write: async (t) => void written.push(t), streamFd: 0, runner });
      expect(status).toBe(1);
      expect(written).toHaveLength(1);
      expect(JSON.parse(written[0]!)).toMatchObject({ ok: false, error: { code: expect.stringMatching(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/) } });
      expect(runner.calls).toEqual([]);
    }
  });
  it('answers a one-shot receive with the snapshot read back after it; a listing that fails still answers success, naming nothing', async () => {
    const listing = ['type\tsnapshot', 'guid\t987654321', 'createtxg\t12', 'userrefs\t0'].map((l) => `tank/drover/${ID}@drover-20261207T120000000Z-0003\t${l}\n`).join('');
    for (const failing of [false, true]) {
      const fake: CommandRunner = {
        run: async () => (failing ? { exitCode: 1, signal: null, stdout: '', stderr: 'internal error: out of memory\n' } : { exitCode: 0, signal: null, stdout: listing, stderr: '' }),
        spawn: () => ({ pid: 1, stdin: null, stdout: null, exited: Promise.resolve({ exitCode: 0, signal: null, stdout: '', stderr: '' }), kill: () => {} }),
      };
      const runner = new RecordingRunner(fake);
      const store = new ZfsStore({ pool: 'tank', runner });
      const s: ReceiveSide = { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() };
      const written: string[] = [];
      const header = { op: 'receive', pool: 'tank', datasetId: ID, resumable: false, full: false };
      const status = await receiveOnce(s, { readHeader: () => JSON.stringify(header), write: async (t) => void written.push(t), streamFd: 0, runner });
      expect(status).toBe(0);
      expect(written[0]).toBe('DROVER-READY\n');
      expect(JSON.parse(written[1]!)).toEqual({ ok: true, value: failing ? null : { snapshot: 'drover-20261207T120000000Z-0003', guid: '987654321' } });
      expect(runner.calls.map((c) => c.args[0])).toEqual(['receive', 'get']);
    }
  });
});
