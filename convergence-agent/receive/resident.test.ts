import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { LocalPeer } from '../transfer/local-peer.ts';
import { END_FRAME, RESIDENT_HELLO, frameHeader } from '../transfer/resident-frames.ts';
import { RecordingRunner, type CommandRunner } from '../zfs/command.ts';
import { ZfsStore } from '../zfs/zfs.ts';
import { serveResident } from './resident.ts';
import type { ReceiveSide } from './serve.ts';

const ID = '6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b';

/**
 * A runner whose `zfs receive` collects its stdin and exits 0 at its end (or `failWith` on a
 * stream of that text); every other command prints `listing` (default nothing).
 */
function fakeSide(failWith?: string, highWaterMark = 16 * 1024, listing = ''): { side: ReceiveSide; runner: RecordingRunner; received: string[] } {
  const received: string[] = [];
  const inner: CommandRunner = {
    run: async () => ({ exitCode: 0, signal: null, stdout: listing, stderr: '' }),
    spawn: () => {
      let text = '';
      // A pipe that takes its time: a write beyond `highWaterMark` asks the writer to wait for 'drain'.
      const stdin = new Writable({ highWaterMark, write: (chunk: Buffer, _e, done) => void setTimeout(() => ((text += chunk.toString()), done()), 1) });
      const exited = new Promise<{ exitCode: number; signal: null; stdout: string; stderr: string }>((resolve) =>
        stdin.on('finish', () => {
          received.push(text);
          resolve(text === failWith ? { exitCode: 1, signal: null, stdout: '', stderr: 'cannot receive incremental stream: destination tank/x has been modified\nsince most recent snapshot' } : { exitCode: 0, signal: null, stdout: '', stderr: '' });
        }),
      );
      return { pid: 1, stdin, stdout: null, exited, kill: () => stdin.end() };
    },
  };
  const runner = new RecordingRunner(inner);
  const store = new ZfsStore({ pool: 'tank', runner });
  return { side: { pool: 'tank', store, peer: new LocalPeer('test', store), log: silentLogger() }, runner, received };
}

/** Feeds `input` and collects what the receiver writes, line by line. */
function serve(side: ReceiveSide): { input: PassThrough; out: string[]; served: Promise<void>; lines: (n: number) => Promise<void> } {
  const input = new PassThrough();
  const out: string[] = [];
  const served = serveResident(side, input, (text) => out.push(...text.split('\n').filter(Boolean)));
  const lines = async (n: number): Promise<void> => {
    while (out.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  return { input, out, served, lines };
}

const header = (extra: Record<string, unknown> = {}): string => `${JSON.stringify({ op: 'receive', pool: 'tank', datasetId: ID, resumable: false, full: false, ...extra })}\n`;
const frames = (text: string): Buffer => Buffer.concat([frameHeader(text.length), Buffer.from(text), END_FRAME]);

describe('drover-receive resident', () => {
  it('takes two streams one after another on one input, each into its own zfs receive, answering each', async () => {
    const { side, runner, received } = fakeSide();
    const s = serve(side);
    await s.lines(1);
    expect(s.out[0]).toBe(RESIDENT_HELLO);
    for (const [i, body] of ['first stream', 'second'].entries()) {
      s.input.write(header());
      await s.lines(2 + 2 * i);
      expect(s.out.at(-1)).toBe('DROVER-READY');
      s.input.write(frames(body));
      await s.lines(3 + 2 * i);
      expect(JSON.parse(s.out.at(-1)!)).toEqual({ ok: true, value: null });
    }
    expect(received).toEqual(['first stream', 'second']);
    // Each receive, then its listing for the verdict (empty here: the verdict names nothing).
    expect(runner.calls.map((c) => c.args[0])).toEqual(['receive', 'get', 'receive', 'get']);
    expect(runner.calls.filter((c) => c.args[0] === 'receive').map((c) => c.args.join(' '))).toEqual([`receive -u tank/drover/${ID}`, `receive -u tank/drover/${ID}`]);
    s.input.end();
    await s.served;
  });

  it('names in its verdict the snapshot the dataset holds right after the receive, read on this side', async () => {
    const snap = (name: string, guid: string, txg: number) => ['type\tsnapshot', `guid\t${guid}`, `createtxg\t${txg}`, 'userrefs\t0'].map((l) => `tank/drover/${ID}@${name}\t${l}\n`).join('');
    const listing = snap('drover-20261207T120000000Z-0001', '111', 5) + snap('drover-20261207T120001000Z-0002', '18446744073709551615', 9);
    const { side, runner } = fakeSide(undefined, 16 * 1024, listing);
    const s = serve(side);
    await s.lines(1);
    s.input.write(header());
    await s.lines(2);
    s.input.write(frames('increment'));
    await s.lines(3);
    expect(JSON.parse(s.out.at(-1)!)).toEqual({ ok: true, value: { snapshot: 'drover-20261207T120001000Z-0002', guid: '18446744073709551615' } });
    // The listing follows the receive.
    expect(runner.calls.map((c) => c.args.slice(0, 2).join(' '))).toEqual(['receive -u', 'get -Hp']);
    s.input.end();
    await s.served;
  });

  it("serves the next header after a stream whose pipe was full when its end frame came (no 'drain' once ending)", async () => {
    const { side, received } = fakeSide(undefined, 1);
    const s = serve(side);
    await s.lines(1);
    const big = 'x'.repeat(100_000);
    for (const [i, body] of [big, 'small'].entries()) {
      s.input.write(header());
      await s.lines(2 + 2 * i);
      expect(s.out.at(-1)).toBe('DROVER-READY');
      s.input.write(frames(body));
      await s.lines(3 + 2 * i);
      expect(JSON.parse(s.out.at(-1)!)).toEqual({ ok: true, value: null });
    }
    expect(received.map((r) => r.length)).toEqual([100_000, 5]);
    s.input.end();
    await s.served;
  });

  it('refuses what the one-shot receive refuses, runs nothing for it, and serves the next header', async () => {
    const { side, runner } = fakeSide();
    const s = serve(side);
    await s.lines(1);
    const refused = [header({ pool: 'other' }), header({ datasetId: '../../victim' }), header({ pool: 'tank/elsewhere' }), '{"op":"pipe-size"}\n', 'not json\n', `${JSON.stringify({ op: 'getDataset', pool: 'tank', datasetId: ID })}\n`];
    for (const [i, text] of refused.entries()) {
      s.input.write(text);
      await s.lines(2 + i);
      expect(JSON.parse(s.out.at(-1)!), text).toMatchObject({ ok: false, error: { code: expect.stringMatching(/DROVER_SSH_RECEIVE_REFUSED|DROVER_ZFS_INVALID_NAME/) } });
    }
    expect(runner.calls).toEqual([]);
    s.input.write(header());
    await s.lines(2 + refused.length);
    expect(s.out.at(-1)).toBe('DROVER-READY');
    s.input.end();
    await s.served;
  });

  it("answers a failed receive after its end frame with zfs's classified error, and stays in step", async () => {
    const { side } = fakeSide('diverged');
    const s = serve(side);
    await s.lines(1);
    s.input.write(header());
    await s.lines(2);
    s.input.write(frames('diverged'));
    await s.lines(3);
    expect(JSON.parse(s.out.at(-1)!)).toMatchObject({ ok: false, error: { code: 'DROVER_ZFS_DIVERGED' } });
    s.input.write(header());
    await s.lines(4);
    s.input.write(frames('fine'));
    await s.lines(5);
    expect(JSON.parse(s.out.at(-1)!)).toEqual({ ok: true, value: null });
    s.input.end();
    await s.served;
  });

  it('ends the running receive when the sender goes away mid-stream, and ends itself', async () => {
    const { side, received } = fakeSide();
    const s = serve(side);
    await s.lines(1);
    s.input.write(header());
    await s.lines(2);
    s.input.write(Buffer.concat([frameHeader(10), Buffer.from('part')]));
    s.input.end();
    await s.served;
    expect(received).toEqual(['part']);
    expect(s.out).toHaveLength(2);
  });
});
