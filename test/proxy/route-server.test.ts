/**
 * The control service's route endpoints, built in process on a memory store and listening
 * on 127.0.0.1, held to the contract of the stand-in the proxy's tests use
 * (proxy/testing/route-server.test.ts). In test/ because the proxy may not import the
 * control service.
 */
import { randomUUID } from 'node:crypto';
import { ROUTES } from '#common/api-routes.ts';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { report } from '../../control-service/testing/harness.ts';
import { routeServiceContract } from '../../proxy/testing/route-server.contract.ts';

routeServiceContract('the real control service', async () => {
  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
  await control.start();
  const app = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  // Applications are placed on a node that reported.
  const node = randomUUID();
  await app.inject({ method: 'POST', url: ROUTES.report.path, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...report(1), uuid: node }) });
  let port = 20_000;
  return {
    baseUrl,
    change: async () => {
      const p = port++;
      await control.change((d) => ({ ...d, applications: [...d.applications, { name: `app${p}`, node_uuid: node, image: 'x', ports: [{ internal: 80, external: p }] } as never] }));
    },
    acked: async (proxy, version) => {
      const res = await app.inject({ method: 'GET', url: `/v1/drover/routes/acks?version=${version}` });
      const status = res.json() as { proxies: { node_uuid: string; acked_version: number }[] };
      return status.proxies.some((p) => p.node_uuid === proxy && p.acked_version >= version);
    },
    close: async () => {
      await app.close();
      await control.stop();
    },
  };
});
