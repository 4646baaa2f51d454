import { describe, expect, it } from 'vitest';
import { parseRedisStart, splitReady } from './app-start.ts';

const LOG = [
  '1:C 07 Dec 2026 14:50:01.000 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo',
  '1:M 07 Dec 2026 14:50:01.100 * Ready to accept connections tcp',
  '1:C 07 Dec 2026 14:53:17.412 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo',
  '1:C 07 Dec 2026 14:53:17.413 # Warning: no config file specified, using the default config.',
  '1:M 07 Dec 2026 14:53:17.420 * Server initialized',
  '1:M 07 Dec 2026 14:53:17.690 * DB loaded from append only file: 0.262 seconds',
  '1:M 07 Dec 2026 14:53:17.702 * Ready to accept connections tcp',
].join('\n');

describe('the moved Redis start split by its own log', () => {
  it('reads the marks of the last start, in UTC milliseconds', () => {
    const start = parseRedisStart(LOG);
    expect(start).toEqual({
      startingAt: Date.UTC(2026, 11, 7, 14, 53, 17, 412),
      loadedAt: Date.UTC(2026, 11, 7, 14, 53, 17, 690),
      loadSeconds: 0.262,
      readyAt: Date.UTC(2026, 11, 7, 14, 53, 17, 702),
    });
  });

  it('splits gate opened → first passing check into exec, load, after load and probe', () => {
    const start = parseRedisStart(LOG);
    const gate = Date.UTC(2026, 11, 7, 14, 53, 17, 400);
    const healthy = Date.UTC(2026, 11, 7, 14, 53, 17, 750);
    expect(splitReady(start, gate, healthy)).toEqual({ exec: 12, load: 278, afterLoad: 12, probe: 48, loadSeconds: 0.262 });
  });

  it('counts no load for a Redis without data and nulls for a log without Redis', () => {
    const empty = parseRedisStart(LOG.split('\n').slice(0, 2).join('\n'));
    expect(splitReady(empty, null, null)).toMatchObject({ load: 0, afterLoad: 100, exec: null, probe: null });
    expect(splitReady(parseRedisStart('starting postgres\n'), 1, 2)).toEqual({ exec: null, load: null, afterLoad: null, probe: null, loadSeconds: null });
  });
});
