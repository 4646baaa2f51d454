/**
 * The one place where `zfs`/`zpool` stderr is read (docs/DESIGN.md §11: classified once, at
 * the adapter). Everything above reads `code` and `retryable`. Pure.
 *
 * Patterns come from zfs-fuse 0.7 and OpenZFS 2.x messages
 * (docs/DESIGN.md §6).
 */
import { DroverError, type ErrorCode } from '#common/errors.ts';

interface Rule {
  pattern: RegExp;
  code: ErrorCode;
  retryable: boolean;
}

// Order matters: the first match wins, most specific first.
const RULES: readonly Rule[] = [
  { pattern: /tag already exists/i, code: 'DROVER_ZFS_HOLD_EXISTS', retryable: false },
  { pattern: /no such tag/i, code: 'DROVER_ZFS_NO_SUCH_TAG', retryable: false },
  { pattern: /out of space|no space left|quota exceeded|disk quota/i, code: 'DROVER_ZFS_NO_SPACE', retryable: false },
  { pattern: /does not match incremental source|has been modified\s+since most recent snapshot/i, code: 'DROVER_ZFS_DIVERGED', retryable: false },
  { pattern: /not an earlier snapshot from the same fs|incremental source .* no longer exists/i, code: 'DROVER_ZFS_DIVERGED', retryable: false },
  { pattern: /partially-complete state|resum(e|able) .*(state|token)/i, code: 'DROVER_ZFS_RESUME_STATE', retryable: true },
  { pattern: /destination .* exists|must specify -F to overwrite/i, code: 'DROVER_ZFS_TARGET_EXISTS', retryable: false },
  { pattern: /invalid backup stream|failed to read from stream|broken pipe|incomplete stream|checksum mismatch|unexpected end/i, code: 'DROVER_ZFS_STREAM_INTERRUPTED', retryable: true },
  { pattern: /more recent snapshots? (or bookmarks )?exist/i, code: 'DROVER_ZFS_ROLLBACK_BLOCKED', retryable: false },
  // A snapshot that is the origin of a kept copy (a rejoin's, docs/DESIGN.md §18) is in use until the operator removes that copy.
  { pattern: /dataset is busy|target is busy|device busy|resource busy|umount failed|pool is busy|has dependent clones/i, code: 'DROVER_ZFS_BUSY', retryable: true },
  { pattern: /already mounted/i, code: 'DROVER_ZFS_ALREADY_MOUNTED', retryable: false },
  { pattern: /not currently mounted/i, code: 'DROVER_ZFS_NOT_MOUNTED', retryable: false },
  { pattern: /dataset already exists|already exists/i, code: 'DROVER_ZFS_EXISTS', retryable: false },
  { pattern: /no such pool/i, code: 'DROVER_ZFS_POOL_NOT_FOUND', retryable: false },
  { pattern: /does not exist|no such file or directory|could not find any snapshots/i, code: 'DROVER_ZFS_NOT_FOUND', retryable: false },
  { pattern: /invalid option|unrecognized command|invalid property|not supported|function not implemented/i, code: 'DROVER_ZFS_UNSUPPORTED', retryable: false },
  { pattern: /invalid dataset name|invalid character/i, code: 'DROVER_ZFS_INVALID_NAME', retryable: false },
  { pattern: /connection (refused|reset|lost)|failed to connect|interrupted/i, code: 'DROVER_ZFS_INTERRUPTED', retryable: true },
];

export interface ZfsFailure {
  /** The command line that failed, for the error's detail (validated names only). */
  argv: readonly string[];
  exitCode: number | null;
  signal?: string | null;
  stderr: string;
}

/** The code and retryability `stderr` maps to; DROVER_ZFS_COMMAND_FAILED (permanent) when nothing matches. */
export function classifyStderr(stderr: string): { code: ErrorCode; retryable: boolean } {
  for (const rule of RULES) if (rule.pattern.test(stderr)) return { code: rule.code, retryable: rule.retryable };
  return { code: 'DROVER_ZFS_COMMAND_FAILED', retryable: false };
}

/** Builds the DroverError for a failed zfs/zpool command. A process killed by a signal is retryable. */
export function zfsError(failure: ZfsFailure): DroverError {
  const stderr = failure.stderr.trim();
  let { code, retryable } = classifyStderr(stderr);
  if (code === 'DROVER_ZFS_COMMAND_FAILED' && failure.signal) {
    code = 'DROVER_ZFS_INTERRUPTED';
    retryable = true;
  }
  const firstLine = stderr.split('\n').find((l) => l.trim() !== '') ?? `exit ${failure.exitCode ?? failure.signal}`;
  return new DroverError(code, `${failure.argv.slice(0, 2).join(' ')}: ${firstLine}`, {
    retryable,
    detail: {
      argv: failure.argv,
      exitCode: failure.exitCode,
      signal: failure.signal ?? null,
      stderr: stderr.slice(0, 2000),
    },
  });
}
