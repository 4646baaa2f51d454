import { describe, expect, it } from 'vitest';
import type { CommandResult } from './command.ts';
import { featuresFrom, MINIMAL_FEATURES, PROBES, type Probe } from './zfs-features.ts';

const fail = (stderr: string): CommandResult => ({ exitCode: 2, signal: null, stdout: '', stderr });

// What zfs-fuse 0.7 answers (measured; reference §4).
const zfsFuse: Record<Probe, CommandResult> = {
  'send-c': fail("invalid option 'c'\nusage:\n\tsend [-RDp] [-[iI] snapshot] <snapshot>"),
  'send-L': fail("invalid option 'L'\nusage: …"),
  'send-e': fail("invalid option 'e'\nusage: …"),
  'send-w': fail("invalid option 'w'\nusage: …"),
  'send-t': fail("invalid option 't'\nusage: …"),
  'recv-s': fail("invalid option 's'\nusage: …"),
  'recv-A': fail("invalid option 'A'\nusage: …"),
  'recv-u': fail('missing snapshot argument\nusage:\n\treceive [-vnF] <filesystem|volume|snapshot>'),
  'get-t': fail("invalid option 't'\nusage: …"),
  'list-p': fail("invalid option 'p'\nusage: …"),
  bookmark: fail("unrecognized command 'bookmark'\nusage: zfs command args ..."),
  holds: { exitCode: 255, signal: null, stdout: '', stderr: 'internal error: /usr/lib/zfs/pyzfs.py not found' },
  'resume-token': fail("bad property list: invalid property 'receive_resume_token'"),
};

// What OpenZFS 2.x answers: every option is known, only the operand is missing.
const openZfs: Record<Probe, CommandResult> = {
  ...Object.fromEntries(PROBES.map((p) => [p, fail('missing snapshot argument\nusage: …')])),
  'send-t': fail("missing argument for 't'"),
  bookmark: fail('missing snapshot argument'),
  holds: fail('missing dataset argument'),
  'resume-token': { exitCode: 0, signal: null, stdout: '-\n', stderr: '' },
  'get-t': { exitCode: 0, signal: null, stdout: '', stderr: '' },
  'list-p': { exitCode: 0, signal: null, stdout: 'tank\n', stderr: '' },
} as Record<Probe, CommandResult>;

describe('zfs feature detection', () => {
  it('finds zfs-fuse 0.7 has recv -u and nothing newer', () => {
    expect(featuresFrom(new Map(Object.entries(zfsFuse) as Array<[Probe, CommandResult]>))).toEqual(MINIMAL_FEATURES);
  });

  it('finds OpenZFS has resumable receives, bookmarks and the compact send flags', () => {
    const features = featuresFrom(new Map(Object.entries(openZfs) as Array<[Probe, CommandResult]>));
    expect(features).toEqual({
      resumableReceive: true,
      sendCompressed: true,
      sendLargeBlocks: true,
      sendEmbedded: true,
      sendRaw: true,
      bookmarks: true,
      receiveUnmounted: true,
      getType: true,
      listParsable: true,
      holdsListing: true,
    });
  });

  it('assumes nothing it did not probe', () => {
    expect(Object.values(featuresFrom(new Map())).every((v) => v === false)).toBe(true);
  });
});
