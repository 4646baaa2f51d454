import { describe, expect, it } from 'vitest';
import { ADDRESS_A, app, desired, localContainer, NODE_A } from '../testing/fixtures.ts';
import { planContainers } from './containers.ts';
import { containerSpec } from './container-spec.ts';

const ctx = { nodeUuid: NODE_A, address: ADDRESS_A, now: 1_000_000, filesRoot: '/var/lib/drover/agent/files', secretsRoot: '/var/lib/drover/agent/secrets' };
const web = app('web', { node_uuid: NODE_A, depends_on: [{ application: 'db', condition: 'service_healthy' }] });
const plan = (d: ReturnType<typeof desired>, containers = [] as ReturnType<typeof localContainer>[]) =>
  planContainers({ desired: d, datasets: [], containers, claimed: new Set(), generations: new Map(), ctx });

describe('depends_on on the agent', () => {
  it('holds a new container back until its dependency is healthy, saying what it waits for', () => {
    const started = desired({ applications: [web], dependencies: { db: { started: true, healthy: false, completed: false } } });
    expect(plan(started)).toMatchObject({ changes: [], blocked: [{ subject: 'container:drover-web', reason: 'waiting for "db" to be healthy (depends_on: service_healthy)' }] });
    const healthy = desired({ applications: [web], dependencies: { db: { started: true, healthy: true, completed: false } } });
    expect(plan(healthy).changes.map((c) => c.kind)).toEqual(['start-container']);
  });

  it('waits when the dependency\'s state is unknown, and leaves a running dependant alone', () => {
    expect(plan(desired({ applications: [web] })).blocked[0]!.reason).toMatch(/^waiting for "db"/);
    const spec = containerSpec(web, { nodeUuid: NODE_A, address: ADDRESS_A, generation: 0, mountpoints: new Map() });
    const running = localContainer('web', { configHash: spec.configHash, running: true, startedAt: 1, generation: 0 });
    expect(plan(desired({ applications: [web] }), [running])).toMatchObject({ changes: [], blocked: [] });
  });

  it('places files under the files directory and secrets under the tmpfs, a new path for new content', () => {
    const withFiles = app('web', {
      node_uuid: NODE_A,
      files: [
        { target: '/etc/app.conf', kind: 'config', blob: 'a'.repeat(64), mode: 0o440 },
        { target: '/run/secrets/pw', kind: 'secret', blob: 'b'.repeat(64) },
      ],
      secret_environment: { TOKEN: 'c'.repeat(64) },
    });
    const spec = containerSpec(withFiles, { generation: 0, mountpoints: new Map(), ...ctx });
    expect(spec.files!.map((f) => [f.source.replace(/[0-9a-f]{16}$/, 'X'), f.target, f.secret, f.mode])).toEqual([
      ['/var/lib/drover/agent/files/web/X', '/etc/app.conf', false, 0o440],
      ['/var/lib/drover/agent/secrets/web/X', '/run/secrets/pw', true, 0o444],
    ]);
    expect(spec.env.join(' ')).not.toContain('TOKEN');
    expect(spec.secretEnv).toEqual({ TOKEN: 'c'.repeat(64) });
    const changed = containerSpec({ ...withFiles, files: [{ ...withFiles.files![0]!, blob: 'd'.repeat(64) }, withFiles.files![1]!] }, { generation: 0, mountpoints: new Map(), ...ctx });
    expect(changed.files![0]!.source).not.toBe(spec.files![0]!.source);
    expect(changed.configHash).not.toBe(spec.configHash);
  });
});
