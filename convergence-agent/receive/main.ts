/**
 * drover-receive: the only program drover's ssh key may run on a node (docs/DESIGN.md §24).
 * sshd starts it as the key's forced command:
 *
 *   command="/usr/bin/drover-receive --pool tank",restrict ssh-ed25519 AAAA… drover-agents
 *
 * It reads what the client asked for from SSH_ORIGINAL_COMMAND, accepts only
 * `drover-receive session`, `receive` and `resident` (../transfer/ssh-protocol.ts), and
 * serves them over stdin/stdout for the pool named here — never a shell, never another
 * pool. Wiring only; the verbs are in serve.ts.
 */
import { accessSync, constants } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { isDroverError } from '#common/errors.ts';
import { createLogger } from '#common/log.ts';
import { LocalPeer } from '../transfer/local-peer.ts';
import { parseOriginalCommand } from '../transfer/ssh-protocol.ts';
import { execaRunner } from '../zfs/command.ts';
import { assertPoolName } from '../zfs/names.ts';
import { ZfsStore } from '../zfs/zfs.ts';
import { serveResident } from './resident.ts';
import { growPipes, receiveOnce, serveSession, type ReceiveSide } from './serve.ts';
import { readLineSync } from './stdin-line.ts';

function fail(message: string, status: number): never {
  process.stderr.write(`drover-receive: ${message}\n`);
  process.exit(status);
}

let options: { pool?: string; 'mount-root'?: string; zfs?: string };
try {
  options = parseArgs({ options: { pool: { type: 'string' }, 'mount-root': { type: 'string' }, zfs: { type: 'string' } }, strict: true, allowPositionals: false }).values;
} catch (err) {
  fail(`${(err as Error).message} (usage: drover-receive --pool <pool> [--mount-root <dir>] [--zfs <path>], as the forced command of an authorized_keys line)`, 2);
}
try {
  assertPoolName(options.pool);
} catch (err) {
  fail(`--pool: ${(err as Error).message}`, 2);
}
const mountRoot = options['mount-root'] ?? null;
if (mountRoot !== null && !/^\/[A-Za-z0-9_./:-]*$/.test(mountRoot)) fail(`--mount-root must be an absolute path of letters, digits and "_./:-", got ${JSON.stringify(mountRoot)}`, 2);

let verb: ReturnType<typeof parseOriginalCommand>;
try {
  verb = parseOriginalCommand(process.env.SSH_ORIGINAL_COMMAND);
} catch (err) {
  fail(isDroverError(err) ? `${err.code}: ${err.message}` : String(err), 1);
}

// Logs go to stderr, which the sender collects with a failed command.
const log = createLogger('drover-receive', { level: process.env.DROVER_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const perl = process.platform === 'linux' && canRun('/usr/bin/perl') ? '/usr/bin/perl' : null;
const runner = growPipes(execaRunner, perl);
const store = new ZfsStore({ pool: options.pool!, mountRoot, runner, log, ...(options.zfs ? { zfsPath: options.zfs } : {}) });
const side: ReceiveSide = { pool: options.pool!, store, peer: new LocalPeer('drover-receive', store), log };

if (verb === 'session') {
  await serveSession(side, process.stdin, (text) => void process.stdout.write(text));
  process.exit(0);
} else if (verb === 'resident') {
  await serveResident(side, process.stdin, (text) => void process.stdout.write(text));
  process.exit(0);
} else {
  const status = await receiveOnce(side, {
    readHeader: () => readLineSync(0),
    write: (text) => new Promise<void>((resolve) => process.stdout.write(text, () => resolve())),
    streamFd: 0,
    runner,
  });
  process.exit(status);
}

function canRun(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
