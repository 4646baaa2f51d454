import { describe, expect, it } from 'vitest';
import type { MigrationUpdate } from './channel.ts';
import { isDroverError } from './errors.ts';
import {
  HANDED_OFF_PHASES,
  isTerminal,
  judgeUpdate,
  MIGRATION_PHASES,
  mayTransition,
  NEXT_PHASES,
  posterOf,
  SOURCE_PHASES,
  TERMINAL_PHASES,
  TRANSITIONS,
  controlFailureIn,
  judgeControlFailure,
  type ControlFailure,
  type MigrationPhase,
} from './migration-protocol.ts';
import { Migration } from './model.ts';

const ALL: MigrationPhase[] = ['pending', 'pre-copy', 'cutover', 'handoff', 'release', 'done', 'failed'];
const SOURCE = '00000001-0000-4000-8000-000000000001';
const TARGET = '00000001-0000-4000-8000-000000000002';
const STRANGER = '00000001-0000-4000-8000-000000000003';
const NODES = { source: SOURCE, target: TARGET, stranger: STRANGER } as const;
type Poster = keyof typeof NODES;

/** The protocol written out by hand, so the module is checked against it and not against itself. */
const LEGAL: Record<string, 'source' | 'target'> = {
  'pending → pre-copy': 'source',
  'pre-copy → cutover': 'source',
  'pre-copy → failed': 'source',
  'cutover → handoff': 'source',
  'cutover → failed': 'source',
  'handoff → release': 'target',
  'release → done': 'target',
};
/** How the control service may fail a migration itself in each phase, written out by hand. */
const CONTROL: Record<MigrationPhase, ControlFailure | null> = {
  pending: 'give-up',
  'pre-copy': 'give-up',
  cutover: 'give-up',
  handoff: 'roll-back',
  release: null,
  done: null,
  failed: null,
};
const controlCases = ALL.flatMap((phase) =>
  (['give-up', 'roll-back'] as const).map((kind) => ({
    phase,
    kind,
    want: CONTROL[phase] === kind ? 'failed: cancelled by the operator @3000' : 'DROVER_MIGRATION_BAD_TRANSITION',
  })),
);
/** Who reports progress within (repeats) each unfinished phase. */
const REPEATS: Record<string, 'source' | 'target'> = { pending: 'source', 'pre-copy': 'source', cutover: 'source', handoff: 'source', release: 'target' };

function record(phase: MigrationPhase, fields: Partial<Migration> = {}): Migration {
  return Migration.parse({
    id: 'cccccccc-0000-4000-8000-000000000001',
    application: 'web',
    dataset_ids: [],
    from: SOURCE,
    to: TARGET,
    phase,
    generation: 5,
    started_at: 1_000,
    updated_at: 1_000,
    ...fields,
  });
}

const update = (phase: MigrationPhase, by: Poster, fields: Partial<MigrationUpdate> = {}): MigrationUpdate => ({ node_uuid: NODES[by], generation: 5, phase, ...fields });

/** The verdict reduced to one word: the effect, or the refusal's code. */
function verdictOf(from: MigrationPhase, to: MigrationPhase, by: Poster): string {
  const v = judgeUpdate(record(from), update(to, by), 2_000);
  return v.ok ? v.effect : v.error.code;
}

function expected(from: MigrationPhase, to: MigrationPhase, by: Poster): string {
  if (from === to && (from === 'done' || from === 'failed')) return 'unchanged';
  if (from === to) return REPEATS[from] === by ? 'progress' : 'DROVER_MIGRATION_WRONG_NODE';
  const poster = LEGAL[`${from} → ${to}`];
  if (poster === undefined) return 'DROVER_MIGRATION_BAD_TRANSITION';
  return poster === by ? 'advanced' : 'DROVER_MIGRATION_WRONG_NODE';
}

const cases = ALL.flatMap((from) => ALL.flatMap((to) => (['source', 'target', 'stranger'] as const).map((by) => ({ from, to, by, want: expected(from, to, by) }))));

describe('the migration protocol', () => {
  it('lists the phases in the order a move passes them, failed last', () => {
    expect([...MIGRATION_PHASES]).toEqual(ALL);
  });

  it('allows failed only before handoff, and nothing after done or failed', () => {
    expect(ALL.filter((p) => NEXT_PHASES[p].includes('failed'))).toEqual(['pre-copy', 'cutover']);
    expect(NEXT_PHASES.done).toEqual([]);
    expect(NEXT_PHASES.failed).toEqual([]);
  });

  it('lets agents make exactly the hand-written transitions, each by its one party', () => {
    const agents = TRANSITIONS.filter((t) => t.by !== 'control').map((t) => [`${t.from} → ${t.to}`, t.by]);
    expect(Object.fromEntries(agents)).toEqual(LEGAL);
    expect(agents).toHaveLength(Object.keys(LEGAL).length);
  });

  it('lets the control service give up before handoff and roll back only a handoff, and nothing else', () => {
    expect(ALL.filter((p) => mayTransition(p, 'failed', 'control'))).toEqual(['pending', 'pre-copy', 'cutover', 'handoff']);
    expect(Object.fromEntries(ALL.map((p) => [p, controlFailureIn(p)]))).toEqual(CONTROL);
    expect(TRANSITIONS.filter((t) => t.by === 'control').every((t) => t.to === 'failed')).toBe(true);
    expect(mayTransition('pending', 'failed', 'source')).toBe(false);
    expect(mayTransition('pending', 'pre-copy', 'control')).toBe(false);
  });

  it.each(controlCases)('judges the control service $kind in $phase: $want', ({ phase, kind, want }) => {
    const v = judgeControlFailure(record(phase), kind, 'cancelled by the operator', 3_000);
    expect(v.ok ? `${v.migration.phase}: ${v.migration.error} @${v.migration.updated_at}` : v.error.code).toBe(want);
  });

  it('says why a control failure is refused: handed off to whom, or already ended', () => {
    const handedOff = judgeControlFailure(record('release'), 'give-up', 'x', 3_000);
    expect(!handedOff.ok && handedOff.error.message).toBe(`Migration ${record('release').id} cannot be given up: it handed off (phase release): node ${TARGET} is primary now.`);
    const ended = judgeControlFailure(record('done'), 'give-up', 'x', 3_000);
    expect(!ended.ok && ended.error.message).toMatch(/cannot be given up: it already ended \(done\)/);
    const early = judgeControlFailure(record('cutover'), 'roll-back', 'x', 3_000);
    expect(!early.ok && early.error.message).toMatch(/cannot be rolled back: it is in cutover/);
  });

  it('only moves forward along the order, or out to failed', () => {
    for (const t of TRANSITIONS) {
      if (t.to !== 'failed') expect(ALL.indexOf(t.to)).toBe(ALL.indexOf(t.from) + 1);
      expect(isTerminal(t.from)).toBe(false);
    }
  });

  it('names the terminal, handed-off and source phases', () => {
    expect(ALL.filter((p) => TERMINAL_PHASES.has(p))).toEqual(['done', 'failed']);
    expect(ALL.filter(isTerminal)).toEqual(['done', 'failed']);
    expect(ALL.filter((p) => HANDED_OFF_PHASES.has(p))).toEqual(['handoff', 'release', 'done']);
    expect(ALL.filter((p) => SOURCE_PHASES.has(p))).toEqual(['pending', 'pre-copy', 'cutover']);
  });

  it('has the source post every phase up to handoff and failed, the target release and done', () => {
    expect(Object.fromEntries(ALL.map((p) => [p, posterOf(p)]))).toEqual({
      pending: 'source',
      'pre-copy': 'source',
      cutover: 'source',
      handoff: 'source',
      release: 'target',
      done: 'target',
      failed: 'source',
    });
  });

  it.each(cases)('judges $from → $to posted by the $by node: $want', ({ from, to, by, want }) => {
    expect(verdictOf(from, to, by)).toBe(want);
  });

  it('refuses a stale generation, older or newer, before any other rule', () => {
    for (const generation of [4, 6]) {
      for (const [from, to, by] of [['pre-copy', 'cutover', 'source'], ['done', 'done', 'target'], ['pending', 'handoff', 'target']] as const) {
        const v = judgeUpdate(record(from), update(to, by, { generation }), 2_000);
        expect(v.ok).toBe(false);
        if (v.ok) continue;
        expect(v.error.code).toBe('DROVER_MIGRATION_STALE_GENERATION');
        expect(v.error.detail).toEqual({ id: record(from).id, generation: 5, got: generation });
      }
    }
  });

  it('checks the order before the poster: the target posting handoff from pending is a bad transition', () => {
    expect(verdictOf('pending', 'handoff', 'target')).toBe('DROVER_MIGRATION_BAD_TRANSITION');
    expect(verdictOf('handoff', 'failed', 'target')).toBe('DROVER_MIGRATION_BAD_TRANSITION');
  });

  it('refuses with a DroverError whose detail names the record and what was wrong', () => {
    const bad = judgeUpdate(record('pending'), update('handoff', 'source'), 2_000);
    const wrong = judgeUpdate(record('handoff'), update('release', 'source'), 2_000);
    expect(!bad.ok && isDroverError(bad.error) && bad.error.detail).toEqual({ id: record('pending').id, phase: 'pending', requested: 'handoff' });
    expect(!wrong.ok && wrong.error.detail).toEqual({ id: record('pending').id, phase: 'release', node_uuid: SOURCE, expected: TARGET });
    expect(!wrong.ok && wrong.error.retryable).toBe(false);
  });

  it('answers a repeated finished phase with the very same record, from any node', () => {
    for (const phase of ['done', 'failed'] as const) {
      const r = record(phase);
      for (const by of ['source', 'target', 'stranger'] as const) expect(judgeUpdate(r, update(phase, by, { round: 9 }), 2_000)).toEqual({ ok: true, effect: 'unchanged', migration: r });
      expect((judgeUpdate(r, update(phase, 'target'), 2_000) as { migration: Migration }).migration).toBe(r);
    }
  });

  it('takes progress fields from the update, keeps omitted ones, clears nullable ones given null', () => {
    const r = record('pre-copy', { round: 1, bytes_sent: 10, bytes_total: 1000, rate_bytes_per_second: 50, error: 'old' });
    const kept = judgeUpdate(r, update('pre-copy', 'source'), 2_000);
    expect(kept).toMatchObject({ ok: true, effect: 'progress', migration: { round: 1, bytes_sent: 10, bytes_total: 1000, rate_bytes_per_second: 50, error: 'old', updated_at: 2_000 } });
    const changed = judgeUpdate(r, update('pre-copy', 'source', { round: 2, bytes_sent: 900, bytes_total: null, rate_bytes_per_second: null, error: null }), 3_000);
    expect(changed).toMatchObject({ ok: true, migration: { round: 2, bytes_sent: 900, bytes_total: null, rate_bytes_per_second: null, error: null, updated_at: 3_000 } });
    expect(r).toEqual(record('pre-copy', { round: 1, bytes_sent: 10, bytes_total: 1000, rate_bytes_per_second: 50, error: 'old' }));
  });

  it('stamps the cutover when it begins, not on a repeat, and measures it at release', () => {
    const cut = judgeUpdate(record('pre-copy'), update('cutover', 'source'), 5_000);
    expect(cut).toMatchObject({ ok: true, effect: 'advanced', migration: { phase: 'cutover', cutover_started_at: 5_000, cutover_ms: null } });
    const repeat = judgeUpdate((cut as { migration: Migration }).migration, update('cutover', 'source'), 5_500);
    expect(repeat).toMatchObject({ ok: true, effect: 'progress', migration: { cutover_started_at: 5_000 } });
    const handoff = judgeUpdate((repeat as { migration: Migration }).migration, update('handoff', 'source'), 5_600);
    const release = judgeUpdate((handoff as { migration: Migration }).migration, update('release', 'target'), 5_800);
    expect(release).toMatchObject({ ok: true, migration: { phase: 'release', cutover_started_at: 5_000, cutover_ms: 800 } });
    const again = judgeUpdate((release as { migration: Migration }).migration, update('release', 'target'), 9_000);
    expect(again).toMatchObject({ ok: true, effect: 'progress', migration: { cutover_ms: 800 } });
  });

  it('leaves the cutover time unknown at release when the cutover start is unknown', () => {
    expect(judgeUpdate(record('handoff'), update('release', 'target'), 5_800)).toMatchObject({ ok: true, migration: { cutover_ms: null } });
  });

  it('records the reason a migration failed', () => {
    expect(judgeUpdate(record('cutover'), update('failed', 'source', { error: 'transfer cut' }), 2_000)).toMatchObject({
      ok: true,
      effect: 'advanced',
      migration: { phase: 'failed', error: 'transfer cut' },
    });
  });
});

describe("a migration record's round figures and phase times", () => {
  it('keeps when each phase began, and the round figures an update carries until another replaces them', () => {
    const a = judgeUpdate(record('pending'), update('pre-copy', 'source', { round: 1, round_bytes_sent: 10, round_bytes_total: 100 }), 2_000);
    if (!a.ok) throw a.error;
    expect(a.migration).toMatchObject({ phases: [{ phase: 'pre-copy', at: 2_000 }], round_bytes_sent: 10, round_bytes_total: 100 });
    const b = judgeUpdate(a.migration, update('pre-copy', 'source', { bytes_sent: 50 }), 2_500);
    if (!b.ok) throw b.error;
    expect(b.migration).toMatchObject({ phases: [{ phase: 'pre-copy', at: 2_000 }], round_bytes_sent: 10, round_bytes_total: 100 });
    const c = judgeUpdate(b.migration, update('cutover', 'source'), 3_000);
    if (!c.ok) throw c.error;
    expect(c.migration.phases).toEqual([
      { phase: 'pre-copy', at: 2_000 },
      { phase: 'cutover', at: 3_000 },
    ]);
  });

  it('adds no round figures to a record of an agent that sends none', () => {
    const v = judgeUpdate(record('pending'), update('pre-copy', 'source', { round: 1 }), 2_000);
    if (!v.ok) throw v.error;
    expect('round_bytes_sent' in v.migration).toBe(false);
    expect('round_bytes_total' in v.migration).toBe(false);
  });
});
