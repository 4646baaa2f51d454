/**
 * The MigrationControl contract against the real control service: built in process on a
 * memory store (control-service/testing/harness.ts), listening on 127.0.0.1, and reached
 * through the agent's own HTTP MigrationControl — the same code path an agent's steps take.
 * The fake runs the same suite in convergence-agent/migration/migration-control.test.ts.
 */
import type { AddressInfo } from 'node:net';
import { datasetId, harness, nodeId, report } from '../../control-service/testing/harness.ts';
import { HttpMigrationControl } from '../../convergence-agent/migration/migration-control.ts';
import { migrationControlContract } from '../../convergence-agent/testing/migration-control.contract.ts';

migrationControlContract('the control service over HTTP', async () => {
  const h = await harness();
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as AddressInfo;
  const control = new HttpMigrationControl(`http://127.0.0.1:${port}`, 5_000);
  return {
    control,
    start: async () => {
      for (const i of [1, 2]) await h.request('POST', '/v1/drover/agents/report', report(i));
      await h.request('POST', '/v1/configuration/datasets', { primary: nodeId(1), dataset_id: datasetId(1) });
      await h.request('POST', '/v1/configuration/containers', { name: 'web', image: 'nginx', node_uuid: nodeId(1), ports: [{ internal: 80, external: 8080 }], volumes: [{ dataset_id: datasetId(1), mountpoint: '/data' }] });
      const moved = await h.request('POST', '/v1/configuration/containers/web', { node_uuid: nodeId(2) });
      return control.get(moved.json().migration.id);
    },
    cleanup: () => h.close(),
  };
});
