import { describe, expect, it } from 'vitest';
import { runAfter, systemClock, type Clock } from './clock.ts';
import { FakeClock, settle } from './testing/fake-clock.ts';

// One contract, run against the system clock and the fake one (docs/DESIGN.md §14: a fake
// exists only with a contract suite that also runs against the real thing). `pass(ms)` lets
// that much time go by: really for the system clock, by `advance` for the fake.
function clockContract(name: string, make: () => { clock: Clock; pass(ms: number): Promise<void> }): void {
  describe(`Clock contract: ${name}`, () => {
    it('wakes a sleeper once its time has passed, not before', async () => {
      const { clock, pass } = make();
      let woke = false;
      void clock.sleep(30).then(() => (woke = true));
      await pass(5);
      expect(woke).toBe(false);
      await pass(45);
      expect(woke).toBe(true);
    });

    it('wakes sleepers in deadline order', async () => {
      const { clock, pass } = make();
      const order: number[] = [];
      void clock.sleep(20).then(() => order.push(20));
      void clock.sleep(5).then(() => order.push(5));
      void clock.sleep(12).then(() => order.push(12));
      await pass(35);
      expect(order).toEqual([5, 12, 20]);
    });

    it('wakes a sleeper early, without error, when its signal aborts, and at once when it already has', async () => {
      const { clock } = make();
      const controller = new AbortController();
      let woke = false;
      void clock.sleep(60_000, controller.signal).then(() => (woke = true));
      await settle();
      expect(woke).toBe(false);
      controller.abort();
      await settle();
      expect(woke).toBe(true);
      await expect(clock.sleep(60_000, AbortSignal.abort())).resolves.toBeUndefined();
    });

    it('runs a callback after its time unless cancelled first (runAfter)', async () => {
      const { clock, pass } = make();
      const ran: string[] = [];
      runAfter(clock, 10, () => ran.push('kept'));
      const cancel = runAfter(clock, 10, () => ran.push('cancelled'));
      cancel();
      await pass(25);
      expect(ran).toEqual(['kept']);
    });

    it('moves now and monotonic forward by at least the time slept', async () => {
      const { clock, pass } = make();
      const [wall, mono] = [clock.now(), clock.monotonic()];
      const slept = clock.sleep(15);
      await pass(20);
      await slept;
      expect(clock.now() - wall).toBeGreaterThanOrEqual(14);
      expect(clock.monotonic() - mono).toBeGreaterThanOrEqual(14);
    });
  });
}

clockContract('systemClock', () => ({ clock: systemClock, pass: (ms) => systemClock.sleep(ms) }));
clockContract('FakeClock', () => {
  const clock = new FakeClock();
  return { clock, pass: (ms) => clock.advance(ms) };
});

describe('FakeClock', () => {
  it('stands still until advanced, and wakes a loop that sleeps again within the same advance', async () => {
    const clock = new FakeClock(1_000);
    const woke: number[] = [];
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(100);
        woke.push(clock.now());
      }
    })();
    await settle();
    expect(clock.now()).toBe(1_000);
    expect(clock.pending).toBe(1);
    await clock.advance(250);
    expect(woke).toEqual([1_100, 1_200]);
    expect(clock.now()).toBe(1_250);
    expect(await clock.tick()).toBe(true);
    expect(woke).toEqual([1_100, 1_200, 1_300]);
    expect(await clock.tick()).toBe(false);
  });
});
