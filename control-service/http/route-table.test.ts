import { describe, expect, it } from 'vitest';
import { ROUTES, type RouteSpec } from '#common/api-routes.ts';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../app.ts';
import { Control } from '../control.ts';
import { MemoryConfigStore } from '../store/memory-store.ts';

/** `METHOD path` of every route fastify serves, read from its route tree (HEAD is fastify's own). */
function served(tree: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line) ?? /^([│ ]*)[├└]── (\S+)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD')) out.push(`${method} ${stack.join('')}`);
  }
  return out.sort();
}

describe('the route table', () => {
  it('is what the control service serves and documents: every entry, and nothing else', async () => {
    const control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
    const app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
    await app.ready();
    const table = (Object.values(ROUTES) as RouteSpec[]).map((r) => `${r.method} ${r.path}`).sort();
    expect(new Set(table).size).toBe(table.length);
    expect(served(app.printRoutes({ commonPrefix: false }))).toEqual(table);

    const doc = (await app.inject({ method: 'GET', url: ROUTES.openapi.path })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{([A-Za-z_]+)\}/g, ':$1')}`));
    expect(documented.sort()).toEqual(table);
    await app.close();
  });
});
