/**
 * What this host's `zfs` can do, probed at start-up (never assumed): zfs-fuse 0.7 lacks
 * resumable receives, bookmarks, `send -c/-L/-e/-w`, `zfs get -t`, `zfs list -p`, hold
 * listing (docs/DESIGN.md §6). Probes follow zrepl and syncoid:
 * run the subcommand with the option and no operand, and look for `invalid option 'X'`;
 * probe properties with `zfs get` and look for `invalid property`. The probes are fixed
 * argv, so the ssh transport runs the same ones on a peer. Parsing is pure.
 */
import type { CommandResult } from './command.ts';
import { assertPoolName } from './names.ts';

export interface ZfsFeatures {
  /** `recv -s`, `send -t <token>`, `recv -A` and the `receive_resume_token` property, all together. */
  resumableReceive: boolean;
  sendCompressed: boolean; // -c
  sendLargeBlocks: boolean; // -L
  sendEmbedded: boolean; // -e
  sendRaw: boolean; // -w
  bookmarks: boolean;
  /** `recv -u` (works on zfs-fuse although its usage text omits it). */
  receiveUnmounted: boolean;
  /** `zfs get -t snapshot`. */
  getType: boolean;
  /** `zfs list -p`. */
  listParsable: boolean;
  /** `zfs holds` lists hold tags (zfs-fuse: only `userrefs` counts them). */
  holdsListing: boolean;
}

export type Probe = 'send-c' | 'send-L' | 'send-e' | 'send-w' | 'send-t' | 'recv-s' | 'recv-A' | 'recv-u' | 'get-t' | 'list-p' | 'bookmark' | 'holds' | 'resume-token';

/** The fixed argv of each probe. `pool` is only used by the property probe. */
export function probeArgv(probe: Probe, pool: string): readonly string[] {
  assertPoolName(pool);
  switch (probe) {
    case 'send-c': return ['send', '-c'];
    case 'send-L': return ['send', '-L'];
    case 'send-e': return ['send', '-e'];
    case 'send-w': return ['send', '-w'];
    case 'send-t': return ['send', '-t'];
    case 'recv-s': return ['receive', '-s'];
    case 'recv-A': return ['receive', '-A'];
    case 'recv-u': return ['receive', '-u'];
    case 'get-t': return ['get', '-t', 'snapshot', '-H', '-o', 'name', 'name', pool];
    case 'list-p': return ['list', '-p', '-H', '-o', 'name', pool];
    case 'bookmark': return ['bookmark'];
    case 'holds': return ['holds'];
    case 'resume-token': return ['get', '-H', '-o', 'value', 'receive_resume_token', pool];
  }
}

export const PROBES: readonly Probe[] = ['send-c', 'send-L', 'send-e', 'send-w', 'send-t', 'recv-s', 'recv-A', 'recv-u', 'get-t', 'list-p', 'bookmark', 'holds', 'resume-token'];

/** True when the probe's answer shows the feature exists. Pure. */
export function probeSupported(probe: Probe, result: CommandResult): boolean {
  const text = `${result.stdout}\n${result.stderr}`;
  if (/unrecognized command|pyzfs\.py not found|internal error/i.test(text)) return false;
  if (/invalid property|bad property list/i.test(text)) return false;
  const option = /^[a-z]+-([A-Za-z])$/.exec(probe)?.[1];
  if (option !== undefined && probe !== 'list-p' && probe !== 'get-t') {
    return !new RegExp(`invalid option '?${option}'?`).test(text);
  }
  if (probe === 'get-t') return !/invalid option '?t'?/.test(text);
  if (probe === 'list-p') return !/invalid option '?p'?/.test(text);
  // bookmark, holds, resume-token: anything but the failures above means it exists.
  return true;
}

/** Builds the feature set from the probe answers. Pure. */
export function featuresFrom(answers: ReadonlyMap<Probe, CommandResult>): ZfsFeatures {
  const ok = (p: Probe): boolean => {
    const r = answers.get(p);
    return r !== undefined && probeSupported(p, r);
  };
  return {
    resumableReceive: ok('recv-s') && ok('send-t') && ok('recv-A') && ok('resume-token'),
    sendCompressed: ok('send-c'),
    sendLargeBlocks: ok('send-L'),
    sendEmbedded: ok('send-e'),
    sendRaw: ok('send-w'),
    bookmarks: ok('bookmark'),
    receiveUnmounted: ok('recv-u'),
    getType: ok('get-t'),
    listParsable: ok('list-p'),
    holdsListing: ok('holds'),
  };
}

/** zfs-fuse 0.7's answers, as measured: what a test or a fake assumes for "the minimal zfs". */
export const MINIMAL_FEATURES: ZfsFeatures = {
  resumableReceive: false,
  sendCompressed: false,
  sendLargeBlocks: false,
  sendEmbedded: false,
  sendRaw: false,
  bookmarks: false,
  receiveUnmounted: true,
  getType: false,
  listParsable: false,
  holdsListing: false,
};

/**
 * Runs every probe through `run` (local or remote `zfs <argv>`) and returns the features.
 * Probes run one at a time: they are cheap, and the 2-core test machine is shared.
 */
export async function detectFeatures(pool: string, run: (argv: readonly string[]) => Promise<CommandResult>): Promise<ZfsFeatures> {
  const answers = new Map<Probe, CommandResult>();
  for (const probe of PROBES) answers.set(probe, await run(probeArgv(probe, pool)));
  return featuresFrom(answers);
}
