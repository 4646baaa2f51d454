/**
 * The plugin's HTTP client against the real control service (in-process, on a loopback
 * port): the same contract the in-memory fake passes (volume-driver/fake-control.test.ts),
 * so the fake the plugin's tests rely on behaves like the real thing.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { controlPlaneContract } from '../../volume-driver/testing/control.contract.ts';
import { HttpControl } from '../../volume-driver/control-http.ts';

const nodeA = '11111111-1111-4111-8111-111111111111';
const nodeB = '22222222-2222-4222-8222-222222222222';
let app: FastifyInstance;
let control: Control;
let baseUrl = '';

beforeAll(async () => {
  control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
  await control.start();
  app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await app?.close();
  await control?.stop();
});

controlPlaneContract('HTTP client against the real control service', () => ({ control: new HttpControl({ baseUrl }), nodeA, nodeB }));
