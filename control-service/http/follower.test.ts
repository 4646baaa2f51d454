import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../app.ts';
import type { Leadership } from '../cluster/leadership.ts';
import { Control } from '../control.ts';
import { MemoryConfigStore } from '../store/memory-store.ts';

function follower(leader: string | null): Leadership {
  return { isLeader: () => false, leaderUrl: () => leader, fence: () => null, onChange: () => undefined };
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function serviceAs(leadership: Leadership) {
  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger(), leadership });
  await control.start();
  const app = buildApp({ control, log: silentLogger(), version: 'test' });
  stops.push(async () => {
    await app.close();
    await control.stop();
  });
  return { control, app };
}

describe('a follower control service (docs/DESIGN.md §28)', () => {
  it('answers reads of the desired configuration itself', async () => {
    const { app } = await serviceAs(follower('https://10.0.0.1:4523'));
    const res = await app.inject({ method: 'GET', url: '/v1/configuration/datasets' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([]);
  });

  it('sends writes and agent traffic to the leader with a 307 to the same path', async () => {
    const { app } = await serviceAs(follower('https://10.0.0.1:4523'));
    const write = await app.inject({ method: 'POST', url: '/v1/configuration/datasets', payload: { primary: '00000001-0000-4000-8000-000000000001' } });
    expect(write.statusCode).toBe(307);
    expect(write.headers.location).toBe('https://10.0.0.1:4523/v1/configuration/datasets');
    expect(write.json()).toMatchObject({ code: 'DROVER_NOT_LEADER', detail: { leader: 'https://10.0.0.1:4523' } });
    const poll = await app.inject({ method: 'GET', url: '/v1/drover/agents/00000001-0000-4000-8000-000000000001/desired?after=0' });
    expect(poll.statusCode).toBe(307);
  });

  it('answers 503 DROVER_NO_LEADER while no leader is known', async () => {
    const { app } = await serviceAs(follower(null));
    const res = await app.inject({ method: 'DELETE', url: '/v1/configuration/leases/0000000d-0000-4000-8000-000000000001' });
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('DROVER_NO_LEADER');
  });

  it('changes nothing and decides nothing when asked directly', async () => {
    const { control } = await serviceAs(follower(null));
    const err = await control.change((d) => ({ ...d, leases: [] })).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('DROVER_NOT_LEADER');
    await control.tick();
    expect(control.snapshot.version).toBe(0);
  });
});
