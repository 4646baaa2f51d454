import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '#common/log.ts';
import type { Application, Desired } from '#common/model.ts';
import { emptyDesired } from '../store/validate.ts';
import { randomSealingKey } from './sealing.ts';
import { ContentSweeper, namedContents } from './sweep.ts';
import { FileVault, MemoryVault } from './vault.ts';

const HOUR = 3600_000;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function withApps(...apps: Partial<Application>[]): Desired {
  return { ...emptyDesired(), applications: apps.map((a, i) => ({ name: `app${i}`, image: 'registry.example/x', ...a }) as Application) };
}

/** A memory vault and a sweeper on one fake clock. */
function world(graceMs = 24 * HOUR) {
  let now = 1_000 * HOUR;
  let desired = emptyDesired();
  const vault = new MemoryVault(randomSealingKey(), () => now);
  const sweeper = new ContentSweeper({ vault, desired: () => desired, log: silentLogger(), graceMs, now: () => now });
  return {
    vault,
    sweeper,
    advance: (ms: number) => (now += ms),
    setDesired: (d: Desired) => (desired = d),
    ids: async () => (await vault.list()).map((c) => c.id).sort(),
  };
}

describe('the sweep of stored file contents', () => {
  it('names every content an application refers to: config and bind files, trees, secret files and secret environment', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((ch) => ch.repeat(64)) as [string, string, string, string];
    const named = namedContents(
      withApps({
        files: [
          { target: '/etc/x.conf', kind: 'config', blob: a },
          { target: '/srv', kind: 'bind', tree: { 'index.html': b } },
          { target: '/run/secrets/p', kind: 'secret', blob: c },
        ],
        secret_environment: { TOKEN: d },
      }),
    );
    expect([...named].sort()).toEqual([`file/${a}`, `file/${b}`, `secret/${c}`, `secret/${d}`]);
  });

  it('keeps a content an application names, however old', async () => {
    const w = world();
    const id = await w.vault.put('file', Buffer.from('listen = 80\n'));
    w.setDesired(withApps({ files: [{ target: '/etc/x.conf', kind: 'config', blob: id }] }));
    for (let i = 0; i < 5; i++) {
      w.advance(24 * HOUR);
      expect(await w.sweeper.sweep()).toEqual({ removed: 0, kept: 1 });
    }
    expect(await w.ids()).toEqual([id]);
  });

  it('removes an unnamed content only once sweeps have found it unnamed for the whole grace', async () => {
    const w = world();
    const id = await w.vault.put('secret', Buffer.from('hunter2'));
    w.setDesired(withApps({ secret_environment: { PASSWORD: id } }));
    w.advance(48 * HOUR);
    expect((await w.sweeper.sweep()).removed).toBe(0);
    // The project is removed: stored long ago, but unnamed only from now on.
    w.setDesired(emptyDesired());
    expect((await w.sweeper.sweep()).removed).toBe(0);
    w.advance(23 * HOUR);
    expect((await w.sweeper.sweep()).removed).toBe(0);
    w.advance(1 * HOUR);
    expect(await w.sweeper.sweep()).toEqual({ removed: 1, kept: 0 });
    expect(await w.ids()).toEqual([]);
  });

  it('starts the grace again for a content named again, or stored again, in between', async () => {
    const w = world();
    const id = await w.vault.put('file', Buffer.from('a file'));
    await w.sweeper.sweep();
    w.advance(20 * HOUR);
    w.setDesired(withApps({ files: [{ target: '/a', kind: 'config', blob: id }] }));
    await w.sweeper.sweep();
    w.setDesired(emptyDesired());
    w.advance(10 * HOUR);
    expect((await w.sweeper.sweep()).removed).toBe(0);
    w.advance(20 * HOUR);
    // A deploy stores it again (the CLI sends every content with each deploy) without naming it yet.
    await w.vault.put('file', Buffer.from('a file'));
    w.advance(10 * HOUR);
    expect((await w.sweeper.sweep()).removed).toBe(0);
    w.advance(15 * HOUR);
    expect((await w.sweeper.sweep()).removed).toBe(1);
  });

  it('keeps a content a deploy stored again after the sweep listed it (the vault checks again in turn)', async () => {
    const w = world(HOUR);
    const id = await w.vault.put('file', Buffer.from('racy'));
    await w.sweeper.sweep();
    w.advance(2 * HOUR);
    const put = w.vault.put('file', Buffer.from('racy'));
    expect(await w.vault.removeIfStoredBefore('file', id, 1_000 * HOUR + HOUR)).toBe(false);
    await put;
    expect(await w.ids()).toEqual([id]);
  });

  it('does the same on disk: lists contents with their times, stores again by touching, removes only older ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drover-sweep-'));
    dirs.push(dir);
    const vault = new FileVault(dir, randomSealingKey());
    const file = await vault.put('file', Buffer.from('config'));
    const secret = await vault.put('secret', Buffer.from('s3cret'));
    const old = new Date(Date.now() - 48 * HOUR);
    await utimes(join(dir, 'files', file), old, old);
    await utimes(join(dir, 'secrets', secret), old, old);
    const listed = await vault.list();
    expect(listed.map((c) => `${c.kind}/${c.id}`).sort()).toEqual([`file/${file}`, `secret/${secret}`].sort());
    expect(listed.every((c) => c.storedAt < Date.now() - 47 * HOUR)).toBe(true);
    await vault.put('secret', Buffer.from('s3cret'));
    const cutoff = Date.now() - HOUR;
    expect(await vault.removeIfStoredBefore('secret', secret, cutoff)).toBe(false);
    expect(await vault.removeIfStoredBefore('file', file, cutoff)).toBe(true);
    expect((await vault.list()).map((c) => c.id)).toEqual([secret]);
    expect((await vault.get('secret', secret)).toString()).toBe('s3cret');
  });
});
