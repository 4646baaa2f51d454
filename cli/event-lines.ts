/** One line per event of the control service's event stream, for `drover events` (docs/DESIGN.md §27). Pure. */
import type { StreamEvent } from '#common/event-stream.ts';
import { bytes, duration, shortId } from './format.ts';

/** The event types the control service sends (common/api-routes.ts `events`). */
export const EVENT_TYPES = ['configuration', 'node', 'migration', 'replication', 'security'] as const;

type Data = Record<string, unknown>;

/** `2026-12-06T16:45:01Z` (UTC, to the second); `-` without a time. */
export function eventTime(at: unknown): string {
  return typeof at === 'number' && Number.isFinite(at) ? new Date(at).toISOString().replace(/\.\d+Z$/, 'Z') : '-';
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * `2026-12-06T16:45:01Z  migration    redis → n2: pre-copy, round 2, 12 MiB sent`. `nameOf`
 * turns a node uuid into its name (its `name` label, else its address). An event of a type
 * this version does not know is shown with its data as JSON.
 */
export function eventLine(event: StreamEvent, nameOf: (uuid: string) => string): string {
  const d = (event.data ?? {}) as Data;
  return `${eventTime(d.at)}  ${event.type.padEnd(14)}${describe(event.type, d, nameOf)}`;
}

function describe(type: string, d: Data, nameOf: (uuid: string) => string): string {
  const node = (v: unknown) => (str(v) === null ? '?' : nameOf(v as string));
  switch (type) {
    case 'configuration':
      return `version ${num(d.version) ?? '?'} (tag ${String(d.tag ?? '?').slice(0, 12)})`;
    case 'node':
      return `${node(d.uuid)}${str(d.host) && nameOf(d.uuid as string) !== d.host ? ` (${d.host})` : ''} is ${String(d.state ?? '?')}`;
    case 'migration': {
      const what = str(d.application) ?? `${Array.isArray(d.dataset_ids) ? d.dataset_ids.length : '?'} dataset(s)`;
      const head = `${what} ${node(d.from)} → ${node(d.to)}: ${String(d.phase ?? '?')}`;
      // A failover's whole id: the `corr` of its records in every process's log (docs/DESIGN.md §25).
      if (d.failover !== undefined) return `${head} (failover ${str(d.id) ?? '?'}${failoverState(d.failover)})`;
      if (d.phase === 'failed') return `${head}: ${str(d.error) ?? 'no reason given'}`;
      if (d.phase === 'done') return `${head}, ${bytes(num(d.bytes_sent) ?? 0)} sent, cutover ${duration(num(d.cutover_ms))}`;
      if (d.phase === 'pre-copy') return `${head}, round ${num(d.round) ?? '?'}, ${bytes(num(d.bytes_sent) ?? 0)} sent`;
      return head;
    }
    case 'replication': {
      const lag = num(d.lag_seconds);
      const problem = str(d.problem);
      return `dataset ${shortId(String(d.dataset_id ?? '?'))} → ${node(d.replica)}: ${String(d.state ?? '?')}${lag === null ? '' : `, ${Math.round(lag)} s behind`}${problem === null ? '' : ` — ${problem}`}`;
    }
    case 'security':
      return `${node(d.uuid)}${str(d.host) ? ` (${d.host})` : ''}: ${str(d.problem) ?? '?'}`;
    default: {
      const { at: _at, ...rest } = d;
      return JSON.stringify(rest);
    }
  }
}

/** `, ready` once the application ran on the chosen node; `, copy kept aside` once the failed node kept its copy. */
function failoverState(info: unknown): string {
  const f = (info ?? {}) as Data;
  const parts: string[] = [];
  if (num(f.ready_at) !== null) parts.push('ready');
  if (Array.isArray(f.diverged) && f.diverged.length > 0) parts.push('copy kept aside');
  if (Array.isArray(f.rejoined) && f.rejoined.length > 0) parts.push('copy rejoined');
  return parts.map((p) => `, ${p}`).join('');
}
