/**
 * `drover-receive resident` (../transfer/resident-frames.ts): one process, started once per
 * sender channel, that takes receive after receive — so sshd's login shell and Node start once
 * per channel, not once per stream. Each header gets exactly the one-shot receive's checks
 * (`checkReceiveHeader`, shared with `receiveOnce`); only `op: 'receive'` is served. Unlike the
 * one-shot, the stream passes through this process (frames → `zfs receive`'s stdin pipe).
 */
import type { Readable } from 'node:stream';
import { DroverError, toDroverError } from '#common/errors.ts';
import { FrameReader, RESIDENT_HELLO } from '../transfer/resident-frames.ts';
import { READY_LINE, ReceiveHeader, line, toWire } from '../transfer/ssh-protocol.ts';
import type { ZfsStreamProcess } from '../zfs/zfs-stream.ts';
import { afterReceive, checkReceiveHeader, type ReceiveSide } from './serve.ts';

/** How long a `zfs receive` whose input was cut mid-stream may take to exit before it is killed. */
const CUT_GRACE_MS = 10_000;

/**
 * Serves receives from `input` until it ends; resolves once the last `zfs receive` exited.
 * `write` sends to the sender (stdout).
 */
export function serveResident(side: ReceiveSide, input: Readable, write: (text: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let zfs: ZfsStreamProcess | null = null;
    /** The running receive's failure seen before its end frame: the rest of its frames are dropped. */
    let failed = false;
    let inputEnded = false;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      resolve();
    };

    const answerRefused = (err: unknown): void => {
      const e = toDroverError(err);
      side.log.warn({ err: e }, 'receive refused');
      write(line({ ok: false, error: toWire(e) }));
      reader.expectLine();
    };

    const onHeader = async (text: string): Promise<void> => {
      let raw: unknown = null;
      try {
        raw = JSON.parse(text);
      } catch {
        // refused below
      }
      const parsed = ReceiveHeader.safeParse(raw);
      if (!parsed.success || parsed.data.op !== 'receive') {
        side.log.warn({ header: text.slice(0, 200) }, 'receive refused');
        return answerRefused(new DroverError('DROVER_SSH_RECEIVE_REFUSED', 'not a drover-receive resident receive header'));
      }
      const header = parsed.data;
      try {
        await checkReceiveHeader(side, header);
      } catch (err) {
        return answerRefused(err);
      }
      if (inputEnded) return finish();
      const started = side.store.receive(header.datasetId, header.resumable);
      zfs = started;
      failed = false;
      // A receive that fails early: its verdict waits for the end frame; EPIPE is not the reason.
      started.input?.on('error', () => {});
      started.done.then(resume, () => {
        failed = true;
        resume();
      });
      write(`${READY_LINE}\n`);
      reader.expectFrames();
      pending = { header, zfs: started };
    };

    /**
     * The input is paused while `zfs receive`'s pipe is full. It is resumed on 'drain' — and
     * whenever the receive ends, either way: a Writable that is ending never emits 'drain', so
     * a stream whose end frame came while its pipe was full would otherwise never read the
     * next header (seen in bench:replication: one replica's receives stopped for 45 s).
     */
    let paused = false;
    const resume = (): void => {
      if (!paused) return;
      paused = false;
      input.resume();
    };

    let pending: { header: Extract<ReceiveHeader, { op: 'receive' }>; zfs: ZfsStreamProcess } | null = null;

    const onEnd = async (): Promise<void> => {
      const current = pending;
      pending = null;
      if (current === null) return;
      current.zfs.input?.end();
      try {
        await current.zfs.done;
        write(line({ ok: true, value: await afterReceive(side, current.header) }));
      } catch (err) {
        const e = toDroverError(err);
        side.log.warn({ err: e }, 'receive failed');
        write(line({ ok: false, error: toWire(e) }));
      }
      zfs = null;
      if (inputEnded) return finish();
      reader.expectLine();
    };

    const reader = new FrameReader({
      line: (text) => void onHeader(text),
      data: (chunk) => {
        const sink = zfs?.input;
        if (failed || !sink || sink.destroyed) return; // dropped up to the end frame
        if (!sink.write(chunk) && !paused) {
          paused = true;
          input.pause();
          sink.once('drain', resume);
        }
      },
      end: () => void onEnd(),
    });

    write(`${RESIDENT_HELLO}\n`);
    input.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        // Out of step with the sender: answer why, cut the running receive, and stop.
        write(line({ ok: false, error: toWire(toDroverError(err)) }));
        input.destroy();
      }
    });
    const ended = (): void => {
      if (inputEnded) return;
      inputEnded = true;
      const cut = pending;
      pending = null;
      if (cut === null) {
        if (zfs === null) finish();
        return; // a header being checked, or a verdict being written: finishes itself
      }
      // Cut mid-stream: zfs sees its input end and discards the partial receive.
      side.log.warn({ datasetId: cut.header.datasetId }, 'the sender went away mid-stream');
      cut.zfs.input?.end();
      const timer = setTimeout(() => cut.zfs.kill('SIGTERM'), CUT_GRACE_MS);
      void cut.zfs.done.catch(() => {}).finally(() => {
        clearTimeout(timer);
        finish();
      });
    };
    input.once('end', ended);
    input.once('close', ended);
  });
}
