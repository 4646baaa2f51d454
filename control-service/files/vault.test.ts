import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DroverError } from '#common/errors.ts';
import { loadOrCreateKey, randomSealingKey, seal, secretIdOf, unseal } from './sealing.ts';
import { FileVault, MemoryVault, type Vault } from './vault.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'drover-vault-'));
  dirs.push(d);
  return d;
}

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof DroverError ? err.code : String(err);
  }
  return undefined;
};

describe('sealing secrets', () => {
  it('opens what it sealed, and a wrong key opens nothing (DROVER_SECRET_UNREADABLE)', () => {
    const key = randomSealingKey();
    const id = secretIdOf(key, Buffer.from('hunter2'));
    const sealed = seal(key, id, Buffer.from('hunter2'));
    expect(sealed.includes(Buffer.from('hunter2'))).toBe(false);
    expect(unseal(key, id, sealed).toString()).toBe('hunter2');
    expect(codeOf(() => unseal(randomSealingKey(), id, sealed))).toBe('DROVER_SECRET_UNREADABLE');
  });

  it('refuses a sealed copy passed off under another id, or damaged by one bit', () => {
    const key = randomSealingKey();
    const sealed = seal(key, 'a'.repeat(64), Buffer.from('value'));
    expect(codeOf(() => unseal(key, 'b'.repeat(64), sealed))).toBe('DROVER_SECRET_UNREADABLE');
    const damaged = Buffer.from(sealed);
    damaged[damaged.length - 1]! ^= 1;
    expect(codeOf(() => unseal(key, 'a'.repeat(64), damaged))).toBe('DROVER_SECRET_UNREADABLE');
    expect(codeOf(() => unseal(key, 'a'.repeat(64), sealed.subarray(0, 20)))).toBe('DROVER_SECRET_UNREADABLE');
  });

  it('names equal secrets alike under one key and differently under another', () => {
    const key = randomSealingKey();
    expect(secretIdOf(key, Buffer.from('x'))).toBe(secretIdOf(key, Buffer.from('x')));
    expect(secretIdOf(key, Buffer.from('x'))).not.toBe(secretIdOf(randomSealingKey(), Buffer.from('x')));
  });

  it('creates the key file once, 0600, and reads the same key back', async () => {
    const path = join(await tempDir(), 'control.key');
    const first = await loadOrCreateKey(path);
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateKey(path);
    expect(again.created).toBe(false);
    expect(again.key.fingerprint).toBe(first.key.fingerprint);
  });

  it('creates one key when asked several times at once, and leaves no temporary file beside it', async () => {
    const dir = await tempDir();
    const path = join(dir, 'control.key');
    const all = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKey(path)));
    expect(all.filter((k) => k.created)).toHaveLength(1);
    expect(new Set(all.map((k) => k.key.fingerprint)).size).toBe(1);
    expect(await readdir(dir)).toEqual(['control.key']);
  });

  it('refuses a key file that is not 32 bytes', async () => {
    const path = join(await tempDir(), 'bad.key');
    await writeFile(path, 'short', { mode: 0o600 });
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ code: 'DROVER_SECRET_KEY_INVALID' });
  });
});

function vaultContract(name: string, make: () => Promise<{ vault: Vault; reopenWithOtherKey: () => Promise<Vault>; sealedBytes: (id: string) => Promise<Buffer> }>): void {
  describe(name, () => {
    it('gives back file contents by their SHA-256 and secrets by their keyed id', async () => {
      const { vault } = await make();
      const file = await vault.put('file', Buffer.from('worker_processes 1;\n'));
      expect(file).toMatch(/^[0-9a-f]{64}$/);
      expect((await vault.get('file', file)).toString()).toBe('worker_processes 1;\n');
      const secret = await vault.put('secret', Buffer.from('s3cret'));
      expect(secret).not.toBe(vault.idOf('file', Buffer.from('s3cret')));
      expect((await vault.get('secret', secret)).toString()).toBe('s3cret');
    });

    it('keeps only sealed bytes of a secret', async () => {
      const { vault, sealedBytes } = await make();
      const id = await vault.put('secret', Buffer.from('plain-password-123'));
      expect((await sealedBytes(id)).includes(Buffer.from('plain-password-123'))).toBe(false);
    });

    it('answers DROVER_FILE_NOT_FOUND for an id it does not hold', async () => {
      const { vault } = await make();
      await expect(vault.get('file', 'c'.repeat(64))).rejects.toMatchObject({ code: 'DROVER_FILE_NOT_FOUND' });
      await expect(vault.get('secret', '../etc/passwd')).rejects.toMatchObject({ code: 'DROVER_FILE_NOT_FOUND' });
    });

    it('decrypts nothing under another key', async () => {
      const { vault, reopenWithOtherKey } = await make();
      const id = await vault.put('secret', Buffer.from('s3cret'));
      const other = await reopenWithOtherKey();
      await expect(other.get('secret', id)).rejects.toMatchObject({ code: 'DROVER_SECRET_UNREADABLE' });
    });
  });
}

vaultContract('the file vault', async () => {
  const dir = await tempDir();
  const vault = new FileVault(dir, randomSealingKey());
  return {
    vault,
    reopenWithOtherKey: async () => new FileVault(dir, randomSealingKey()),
    sealedBytes: async (id) => {
      expect(await readdir(join(dir, 'secrets'))).toContain(id);
      return readFile(join(dir, 'secrets', id));
    },
  };
});

vaultContract('the memory vault', async () => {
  const vault = new MemoryVault();
  return {
    vault,
    reopenWithOtherKey: async () => {
      // The same sealed bytes, another key.
      const other = new MemoryVault(randomSealingKey());
      return {
        idOf: other.idOf.bind(other),
        put: other.put.bind(other),
        list: other.list.bind(other),
        removeIfStoredBefore: other.removeIfStoredBefore.bind(other),
        get: async (kind, id) => {
          const sealed = vault.sealedCopy(id);
          if (sealed === undefined) return other.get(kind, id);
          return unseal(randomSealingKey(), id, sealed);
        },
      } satisfies Vault;
    },
    sealedBytes: async (id) => vault.sealedCopy(id)!,
  };
});
