/**
 * The agent's HTTP channel against the real control service, built in process on a memory
 * store and listening on 127.0.0.1: the same contract the fake the loop's tests run on
 * keeps (convergence-agent/testing/fake-control-channel.test.ts). It lives in test/ because
 * the agent may not import the control service.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { silentLogger } from '#common/log.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { report } from '../../control-service/testing/harness.ts';
import { HttpControlChannel } from '../../convergence-agent/control-channel.ts';
import { controlChannelContract } from '../../convergence-agent/testing/control-channel.contract.ts';

controlChannelContract('the HTTP channel against the real control service', async () => {
  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger() });
  await control.start();
  const app: FastifyInstance = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const channel = new HttpControlChannel(baseUrl);
  const nodeUuid = randomUUID();
  const nodeReport = { ...report(1), uuid: nodeUuid };
  // A node is known once it reported.
  await channel.report(nodeReport);
  return {
    channel,
    nodeUuid,
    report: nodeReport,
    // A dataset whose primary is the node is part of its view.
    change: async () => {
      await control.change((d) => ({ ...d, datasets: [...d.datasets, { dataset_id: randomUUID(), primary: nodeUuid } as never] }));
    },
    close: async () => {
      await app.close();
      await control.stop();
    },
  };
});
