import { describe, expect, it } from 'vitest';
import { collectFiles, MAX_DIR_FILES, MAX_FILE_BYTES, sourcesOf, type PathContent } from './compose-files.ts';

const compose = {
  services: {
    web: {
      volumes: ['./nginx.conf:/etc/nginx/nginx.conf:ro', './data:/data', 'named:/x:ro', { type: 'bind', source: './html', target: '/html', read_only: true }, '/abs:/abs:ro'],
    },
  },
  configs: { a: { file: './a.conf' }, e: { environment: 'SETTING' } },
  secrets: { s: { file: './s.txt' }, t: { environment: 'TOKEN' } },
};

describe('the files a deploy ships', () => {
  it('finds config and secret sources and read-only project binds, not read-write or host paths', () => {
    expect(sourcesOf(compose).map((s) => s.path)).toEqual(['./a.conf', 'env:SETTING', './s.txt', 'env:TOKEN', './nginx.conf', './html']);
  });

  it('names each path by its content\'s SHA-256 and uploads each content once', async () => {
    const files: Record<string, PathContent> = {
      './nginx.conf': { file: Buffer.from('x') },
      './a.conf': { file: Buffer.from('x') },
      './s.txt': { file: Buffer.from('secret') },
      './html': { dir: { 'index.html': Buffer.from('<h1/>') } },
    };
    const out = await collectFiles(compose, async (p) => files[p] ?? null, (name) => (name === 'TOKEN' ? 'tok' : undefined));
    expect(out.refs['./nginx.conf']).toEqual(out.refs['./a.conf']);
    expect(out.refs['env:SETTING']).toBeNull();
    expect(out.refs['./html']).toEqual({ tree: { 'index.html': expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(out.uploads.size).toBe(4); // x, secret, tok, <h1/>
  });

  it('refuses a file over 1 MiB and a directory over its limits, saying why', async () => {
    const big = { file: Buffer.alloc(MAX_FILE_BYTES + 1) };
    const many = { dir: Object.fromEntries(Array.from({ length: MAX_DIR_FILES + 1 }, (_, i) => [`f${i}`, Buffer.from('.')])) };
    const out = await collectFiles(compose, async (p) => (p === './a.conf' ? big : p === './html' ? many : null), () => undefined);
    expect(out.refs['./a.conf']).toEqual({ error: 'is 1.0 MiB; a file that travels with the project is at most 1 MiB (put it in the image or a named volume)' });
    expect(out.refs['./html']).toEqual({ error: `is a directory of ${MAX_DIR_FILES + 1} files and 0.0 MiB; one that travels with the project holds at most ${MAX_DIR_FILES} files and 1 MiB (put it in the image or a named volume)` });
    expect(out.uploads.size).toBe(0);
  });
});
