import { describe, expect, it } from 'vitest';
import { armLine, DISARM_LINE, WatchdogDeadline } from './deadline.ts';

const S = 1_000_000_000n;

describe('the fence watchdog deadline', () => {
  it('fences once when the deadline passes unrenewed, with what the arm covered', () => {
    const w = new WatchdogDeadline();
    expect(w.take(armLine(10n * S, ['redis'], ['d1']))).toBeNull();
    expect(w.next(10n * S)).toEqual({ kind: 'wait' });
    expect(w.next(10n * S + 1n)).toMatchObject({ kind: 'fence', apps: ['redis'], datasetIds: ['d1'] });
    expect(w.next(11n * S)).toEqual({ kind: 'wait' });
  });

  it('does not fence while the agent keeps arming later deadlines, and fences again after a resumed agent lapses again', () => {
    const w = new WatchdogDeadline();
    w.take(armLine(10n * S, ['redis'], []));
    w.take(armLine(12n * S, ['redis'], []));
    expect(w.next(11n * S)).toEqual({ kind: 'wait' });
    expect(w.next(13n * S).kind).toBe('fence');
    w.take(armLine(20n * S, ['redis'], []));
    expect(w.next(19n * S)).toEqual({ kind: 'wait' });
    expect(w.next(21n * S).kind).toBe('fence');
  });

  it('ends without fencing when disarmed by an agent stopping on purpose', () => {
    const w = new WatchdogDeadline();
    w.take(armLine(10n * S, ['redis'], []));
    w.take(DISARM_LINE);
    expect(w.next(11n * S)).toEqual({ kind: 'exit', why: 'disarmed by the agent' });
  });

  it('fences at the deadline, then ends, when the agent is gone without a disarm', () => {
    const w = new WatchdogDeadline();
    w.take(armLine(10n * S, ['redis'], []));
    w.end();
    expect(w.next(9n * S)).toEqual({ kind: 'wait' });
    expect(w.next(10n * S + 1n).kind).toBe('fence');
    expect(w.next(10n * S + 2n)).toEqual({ kind: 'exit', why: 'the agent is gone; fenced' });
    const never = new WatchdogDeadline();
    never.end();
    expect(never.next(0n).kind).toBe('exit');
    const empty = new WatchdogDeadline();
    empty.take(armLine(10n * S, [], []));
    empty.end();
    expect(empty.next(0n)).toEqual({ kind: 'exit', why: 'the agent is gone; nothing to fence' });
  });

  it('refuses a line that is not a message, saying why, and keeps its deadline', () => {
    const w = new WatchdogDeadline();
    w.take(armLine(10n * S, ['redis'], []));
    expect(w.take('{"arm":{"deadline_ns":"-1","apps":[],"dataset_ids":[]}}')).toMatch(/deadline_ns/);
    expect(w.take('not json')).not.toBeNull();
    expect(w.next(11n * S).kind).toBe('fence');
  });
});
