import { describe, expect, it } from 'vitest';
import { classifyStderr, zfsError } from './zfs-errors.ts';

// Messages as zfs-fuse 0.7 and OpenZFS print them (docs/DESIGN.md §6).
const cases: Array<[string, string, boolean]> = [
  ["cannot destroy 'zrdst/bt2': dataset is busy", 'DROVER_ZFS_BUSY', true],
  ['umount: /zrdst/fs: target is busy.', 'DROVER_ZFS_BUSY', true],
  ["cannot destroy 'p/drover/x@drover-1': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\np/drover-diverged/x-g7", 'DROVER_ZFS_BUSY', true],
  ['cannot receive new filesystem stream: invalid backup stream', 'DROVER_ZFS_STREAM_INTERRUPTED', true],
  ['cannot receive: failed to read from stream', 'DROVER_ZFS_STREAM_INTERRUPTED', true],
  ["warning: cannot send 'p/fs@s': Broken pipe", 'DROVER_ZFS_STREAM_INTERRUPTED', true],
  ['cannot receive incremental stream: most recent snapshot of zrdst/t does not match incremental source', 'DROVER_ZFS_DIVERGED', false],
  ['cannot receive incremental stream: destination zrdst/fs has been modified\nsince most recent snapshot', 'DROVER_ZFS_DIVERGED', false],
  ["cannot receive new filesystem stream: destination 'zrdst/fs' exists\nmust specify -F to overwrite it", 'DROVER_ZFS_TARGET_EXISTS', false],
  ['cannot receive new filesystem stream: out of space', 'DROVER_ZFS_NO_SPACE', false],
  ["cannot hold 'zrsrc/fs@s3': tag already exists on this dataset", 'DROVER_ZFS_HOLD_EXISTS', false],
  ["cannot release 'h1' from 'zrsrc/fs@s3': no such tag on this dataset", 'DROVER_ZFS_NO_SUCH_TAG', false],
  ["cannot open 'p/drover/x': dataset does not exist", 'DROVER_ZFS_NOT_FOUND', false],
  ["cannot create 'p/drover/x': dataset already exists", 'DROVER_ZFS_EXISTS', false],
  ["invalid option 's'\nusage:\n\treceive [-vnF] <filesystem|volume|snapshot>", 'DROVER_ZFS_UNSUPPORTED', false],
  ["cannot rollback to 'p/x@a': more recent snapshots exist", 'DROVER_ZFS_ROLLBACK_BLOCKED', false],
  ['cannot resume send: incremental source 0x1234 no longer exists', 'DROVER_ZFS_DIVERGED', false],
  ["destination p/x contains partially-complete state from \"zfs receive -s\"", 'DROVER_ZFS_RESUME_STATE', true],
  ['something nobody has seen before', 'DROVER_ZFS_COMMAND_FAILED', false],
];

describe('zfs stderr classification', () => {
  it.each(cases)('classifies %j', (stderr, code, retryable) => {
    expect(classifyStderr(stderr)).toEqual({ code, retryable });
  });

  it('treats a process killed by a signal as interrupted and retryable', () => {
    const err = zfsError({ argv: ['zfs', 'send', 'p/x@a'], exitCode: null, signal: 'SIGTERM', stderr: '' });
    expect(err).toMatchObject({ code: 'DROVER_ZFS_INTERRUPTED', retryable: true });
  });

  it('keeps the command line and the first stderr line in the error', () => {
    const err = zfsError({ argv: ['zfs', 'destroy', 'p/x'], exitCode: 1, stderr: "cannot destroy 'p/x': dataset is busy\n" });
    expect(err.message).toBe("zfs destroy: cannot destroy 'p/x': dataset is busy");
    expect(err.detail).toMatchObject({ argv: ['zfs', 'destroy', 'p/x'], exitCode: 1 });
  });
});
