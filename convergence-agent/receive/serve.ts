/**
 * drover-receive's two verbs (docs/DESIGN.md §24), apart from the process: `serveSession`
 * answers a sender's requests, `receiveOnce` takes one stream into `zfs receive -u`. Both
 * check every request against ../transfer/ssh-protocol.ts and this host's namespace (its one
 * pool, fixed by the forced command; dataset ids that are UUIDs; drover's snapshot names and
 * hold tags) before any zfs command runs, and run zfs through the agent's own adapter (argv
 * arrays through execa, never a shell).
 */
import type { Readable } from 'node:stream';
import { DroverError, isDroverError, toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { LocalPeer } from '../transfer/local-peer.ts';
import { readReceived, type ReceivedSnapshot } from '../transfer/received.ts';
import { LineSplitter, READY_LINE, ReceiveHeader, SessionRequest, line, toWire, type Answer } from '../transfer/ssh-protocol.ts';
import { assertDatasetId, assertHoldTag, assertSnapshotName } from '../zfs/names.ts';
import type { ZfsStore } from '../zfs/zfs.ts';
import type { CommandRunner } from '../zfs/command.ts';

/** This host's receiving side: its one pool and the agent's zfs adapter over it. */
export interface ReceiveSide {
  pool: string;
  store: ZfsStore;
  /** Steps over `store` (the same code the tls transport's receiver runs). */
  peer: LocalPeer;
  log: Logger;
}

function refused(message: string, detail: Record<string, unknown> = {}): DroverError {
  return new DroverError('DROVER_SSH_RECEIVE_REFUSED', message, { detail });
}

function checkPool(side: ReceiveSide, pool: string): void {
  if (pool !== side.pool) throw refused(`this key receives into pool ${side.pool} only, not ${JSON.stringify(pool.slice(0, 100))}`, { pool: pool.slice(0, 100) });
}

/** The answer to one session request; never throws (a refusal or failure is an answer). */
export async function answerRequest(side: ReceiveSide, raw: unknown): Promise<Answer> {
  const id = typeof (raw as { id?: unknown } | null)?.id === 'number' ? (raw as { id: number }).id : undefined;
  const parsed = SessionRequest.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`);
    side.log.warn({ problems }, 'request refused');
    return { id, ok: false, error: toWire(refused(`not a drover-receive request (${problems.join('; ')})`, { problems })) };
  }
  const request = parsed.data;
  try {
    checkPool(side, request.pool);
    return { id, ok: true, value: (await perform(side, request)) ?? null };
  } catch (err) {
    const e = toDroverError(err);
    if (e.code === 'DROVER_SSH_RECEIVE_REFUSED' || e.code === 'DROVER_ZFS_INVALID_NAME') side.log.warn({ op: request.op, err: e }, 'request refused');
    return { id, ok: false, error: toWire(e) };
  }
}

async function perform(side: ReceiveSide, request: SessionRequest): Promise<unknown> {
  if (request.op === 'features') return side.store.features();
  if (request.op === 'prepare') return side.store.ensureRoot();
  // Every name is checked before anything runs (beginStep may create `<pool>/drover`).
  assertDatasetId(request.datasetId);
  // Reads take no step (no lock, no `<pool>/drover` created): they run beside each other.
  if (request.op === 'getDataset') return side.store.getDataset(request.datasetId);
  if (request.op === 'listSnapshots') return listOrNone(side, request.datasetId);
  if (request.op === 'getState') return side.store.getDatasetState(request.datasetId);
  if ('snapshot' in request) assertSnapshotName(request.snapshot);
  if ('tag' in request) assertHoldTag(request.tag);
  // A step per request: the sender holds its own per-dataset lock for the whole step.
  const step = await side.peer.beginStep(request.datasetId, { waitMs: 60_000 });
  try {
    switch (request.op) {
      case 'hold': return await step.hold(request.snapshot, request.tag);
      case 'release': return await step.release(request.snapshot, request.tag);
      case 'rollback': {
        // `rollback -r` discards data: only ever on a read-only replica, whatever the sender says.
        const info = await step.getDataset();
        if (info !== null && !info.readonly) throw refused(`${info.name} is writable (a primary, not a replica): it is never rolled back over ssh`, { datasetId: request.datasetId });
        return await step.rollback(request.snapshot);
      }
      case 'setAside': {
        // LocalStep refuses a writable dataset itself (a replica only); it renames, never destroys.
        if (!step.setAside) throw refused('this receiver cannot set a copy aside', { datasetId: request.datasetId });
        return await step.setAside(request.generation);
      }
      case 'destroySnapshot': return await step.destroySnapshot(request.snapshot);
      case 'resumeToken': return await step.resumeToken();
      case 'abortResume': return await step.abortResume();
    }
  } finally {
    await step.end();
  }
}

async function listOrNone(side: ReceiveSide, datasetId: string): Promise<unknown> {
  try {
    return await side.store.listSnapshots(datasetId);
  } catch (err) {
    if (isDroverError(err, 'DROVER_DATASET_NOT_FOUND')) return [];
    throw err;
  }
}

/** Requests that only read: they may run beside each other, never beside or before an earlier write. */
const READS = new Set(['features', 'getDataset', 'listSnapshots', 'getState']);

/**
 * Answers requests from `input` (one JSON object a line), each answer naming its request's id,
 * until it ends. A read starts once every earlier write ended, and runs beside other reads (a
 * step's `getDataset` and `listSnapshots`: two zfs commands at once, not one after the other);
 * a write (hold, release, rollback…) starts once every earlier request ended. So each request
 * sees what every earlier write did, as when all ran in order.
 */
export function serveSession(side: ReceiveSide, input: Readable, write: (text: string) => void): Promise<void> {
  return new Promise((resolve) => {
    /** Every request so far ended: what a write waits for. */
    let all: Promise<unknown> = Promise.resolve();
    /** Every write so far ended: what a read waits for. */
    let writes: Promise<unknown> = Promise.resolve();
    const splitter = new LineSplitter((text) => {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        raw = null;
      }
      const answer = async (): Promise<void> => write(line(await answerRequest(side, raw)));
      if (READS.has(String((raw as { op?: unknown } | null)?.op))) {
        all = Promise.all([all, writes.then(answer)]);
      } else {
        writes = all = all.then(answer);
      }
    });
    input.on('data', (chunk: Buffer) => {
      try {
        splitter.push(chunk);
      } catch (err) {
        write(line({ ok: false, error: toWire(toDroverError(err)) }));
        input.destroy();
      }
    });
    const finish = (): void => void all.then(() => resolve());
    input.once('end', finish);
    input.once('close', finish);
  });
}

/** Perl's F_SETPIPE_SZ on its stdin, then exec of the real program (no shell): see growPipes. */
const PIPE_BYTES = 1024 * 1024;
const GROW_AND_EXEC = `unless (fcntl(STDIN, 1031, ${PIPE_BYTES})) { open(F, "<", "/proc/sys/fs/pipe-max-size") and fcntl(STDIN, 1031, 0 + <F>) } exec { $ARGV[0] } @ARGV; die "exec $ARGV[0]: $!\\n"`;

/**
 * A runner whose programs that read one of this process's descriptors get that pipe grown
 * from sshd's 64 KiB to 1 MiB first (or to `fs.pipe-max-size` when lower), through a fixed
 * perl program that then execs them with their argv as given (perl's list form of exec: no
 * shell). A deeper queue lets sshd and zfs receive run in longer bursts (bench/RESULTS.md,
 * "Transfer"). Node has no fcntl; Debian's perl-base is Essential. Without perl (`perl: null`)
 * the programs run as they are.
 */
export function growPipes(inner: CommandRunner, perl: string | null): CommandRunner {
  return {
    run: (file, args, options) => inner.run(file, args, options),
    spawn: (file, args, options = {}) =>
      perl !== null && typeof options.stdin === 'number' ? inner.spawn(perl, ['-e', GROW_AND_EXEC, file, ...args], options) : inner.spawn(file, args, options),
  };
}

/**
 * A receive header's checks before its stream is accepted, the same for the one-shot and the
 * resident receiver: this host's pool only, a dataset id that is a UUID; a full receive gets
 * `<pool>/drover` created.
 * @throws DROVER_SSH_RECEIVE_REFUSED, DROVER_ZFS_INVALID_NAME
 */
export async function checkReceiveHeader(side: ReceiveSide, header: Extract<ReceiveHeader, { op: 'receive' }>): Promise<void> {
  checkPool(side, header.pool);
  assertDatasetId(header.datasetId);
  if (header.full) await side.store.ensureRoot();
}

/**
 * After `zfs receive` exited 0, the same for the one-shot and the resident receiver: a new
 * replica is settled (read-only, drover's mountpoint, unmounted), then the snapshot the dataset
 * holds now is read for the verdict (../transfer/received.ts; null when it cannot be read).
 * Throws only when settling fails.
 */
export async function afterReceive(side: ReceiveSide, header: Extract<ReceiveHeader, { op: 'receive' }>): Promise<ReceivedSnapshot | null> {
  if (header.full) await side.store.settleReplica(header.datasetId);
  const received = await readReceived(side.store, header.datasetId, side.log);
  side.log.info({ datasetId: header.datasetId, full: header.full, received }, 'stream received');
  return received;
}

export interface ReceiveOnceIo {
  /** The header line (without its newline), read without reading past it; null at end of input. */
  readHeader(): string | null;
  /** Writes to the sender (stdout). */
  write(text: string): Promise<void>;
  /** The descriptor the stream arrives on (stdin): zfs receive reads it itself. */
  streamFd: number;
  /** The runner for the pipe-size diagnostic (growPipes over the real one). */
  runner: CommandRunner;
}

/**
 * One receive: header → checks → `DROVER-READY` → `zfs receive -u` reading the stream from
 * `streamFd` itself (nothing of it passes through this process) → after a full receive the
 * replica is settled (read-only, drover's mountpoint, unmounted) → one verdict line, whose
 * value is the snapshot received (`afterReceive`).
 * Returns the exit status (0 when the verdict is ok).
 */
export async function receiveOnce(side: ReceiveSide, io: ReceiveOnceIo): Promise<number> {
  const verdict = async (answer: Answer): Promise<number> => {
    await io.write(line(answer));
    return answer.ok ? 0 : 1;
  };
  const text = io.readHeader();
  if (text === null) return 0; // a warm process the sender never used
  let raw: unknown = null;
  try {
    raw = JSON.parse(text);
  } catch {
    // refused below
  }
  const parsed = ReceiveHeader.safeParse(raw);
  if (!parsed.success) {
    side.log.warn({ header: text.slice(0, 200) }, 'receive refused');
    return verdict({ ok: false, error: toWire(refused('not a drover-receive receive header')) });
  }
  const header = parsed.data;
  try {
    if (header.op === 'pipe-size') {
      await io.write(`${READY_LINE}\n`);
      const probe = io.runner.spawn('perl', ['-e', 'print fcntl(STDIN, 1032, 0)'], { stdin: io.streamFd, stdout: 'pipe' });
      let out = '';
      probe.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
      await probe.exited;
      return verdict({ ok: true, value: Number(out.trim()) });
    }
    await checkReceiveHeader(side, header);
    await io.write(`${READY_LINE}\n`);
    const zfs = side.store.receive(header.datasetId, header.resumable, io.streamFd);
    await zfs.done;
    return verdict({ ok: true, value: await afterReceive(side, header) });
  } catch (err) {
    const e = toDroverError(err);
    side.log.warn({ err: e }, 'receive failed');
    return verdict({ ok: false, error: toWire(e) });
  }
}
