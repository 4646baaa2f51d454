/**
 * The real control service in this process, listening on 127.0.0.1:0 (the CLI talks to it
 * over real HTTP), with two nodes whose agents are played by the test: `reportAll()` sends
 * what agents would see once they converged (every placed application running and healthy,
 * every dataset on its primary), and `agentStep()` advances the running migration by one
 * step of a script, as the source and then the target agent would.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { silentLogger } from '#common/log.ts';
import { UNPLACED_PRIMARY, type Migration } from '#common/model.ts';
import { buildApp } from '../../control-service/app.ts';
import { Control } from '../../control-service/control.ts';
import { MemoryConfigStore } from '../../control-service/store/memory-store.ts';
import { container, FakeClock, HARNESS_EPOCH, nodeId, observedDataset, report } from '../../control-service/testing/harness.ts';

export const NODES = [1, 2].map((i) => ({ uuid: nodeId(i), host: `127.0.0.${10 + i}`, labels: { name: `n${i}` } }));

/** One step an agent reports; `advanceMs` moves the service's clock first (a cutover's length). */
export type Step = Partial<Pick<Migration, 'phase' | 'round' | 'bytes_sent' | 'bytes_total' | 'rate_bytes_per_second' | 'round_bytes_sent' | 'round_bytes_total' | 'error'>> & { advanceMs?: number };

const MiB = 1024 ** 2;

export const SUCCESS: Step[] = [
  // As the source agent posts them: running totals, and the round's own figures (round 2 sends 40 MiB of its own).
  { phase: 'pre-copy', round: 1, bytes_sent: 0, bytes_total: 100 * MiB, round_bytes_sent: 0, round_bytes_total: 100 * MiB },
  { phase: 'pre-copy', round: 1, bytes_sent: 60 * MiB, bytes_total: 100 * MiB, rate_bytes_per_second: 30 * MiB, round_bytes_sent: 60 * MiB, round_bytes_total: 100 * MiB },
  { phase: 'pre-copy', round: 2, bytes_sent: 100 * MiB, bytes_total: 100 * MiB, rate_bytes_per_second: 30 * MiB, round_bytes_sent: 40 * MiB, round_bytes_total: 40 * MiB },
  { phase: 'cutover', round: 3, bytes_sent: 101 * MiB, bytes_total: 101 * MiB },
  { phase: 'handoff', round: 3 },
  { phase: 'release', round: 3, advanceMs: 180 },
  { phase: 'done', round: 3 },
];

export interface InProcessControl {
  url: string;
  control: Control;
  /** The service's clock (a node falls silent when it is advanced past the lease without a report). */
  clock: FakeClock;
  /** Every request the service answered, as `METHOD /path`. */
  requests: string[];
  /** The steps the next migration walks through, one per `agentStep()`. */
  script: Step[];
  /** Every node reports what it was told to run; `only`: just these nodes (the others fall silent as the clock moves). */
  reportAll(only?: readonly string[]): Promise<void>;
  agentStep(): Promise<void>;
  close(): Promise<void>;
}

export async function startControl(): Promise<InProcessControl> {
  const clock = new FakeClock(HARNESS_EPOCH);
  const control = new Control({ store: new MemoryConfigStore(), log: silentLogger(), clock, nodeTimeoutMs: 15_000, seed: 7 });
  await control.start();
  const app: FastifyInstance = buildApp({ control, log: silentLogger(), version: '0.0.0-test' });
  const requests: string[] = [];
  app.addHook('onRequest', async (request) => {
    requests.push(`${request.method} ${request.url.split('?')[0]}`);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const steps = new Map<string, number>();
  const world: InProcessControl = {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    control,
    clock,
    requests,
    script: SUCCESS,
    async reportAll(only) {
      const desired = control.desired;
      for (const [i, node] of NODES.entries()) {
        if (only !== undefined && !only.includes(node.uuid)) continue;
        await control.report(
          report(i + 1, {
            labels: node.labels,
            containers: desired.applications.filter((a) => a.node_uuid === node.uuid).map((a) => container(a.name, { image: a.image, health: 'healthy' })),
            datasets: desired.datasets.filter((d) => !d.deleted && d.primary === node.uuid && d.primary !== UNPLACED_PRIMARY).map((d) => observedDataset(d.dataset_id, { maximum_size: d.maximum_size })),
          }),
        );
      }
    },
    async agentStep() {
      const running = control.desired.migrations.find((m) => m.phase !== 'done' && m.phase !== 'failed');
      if (running === undefined) return;
      const at = steps.get(running.id) ?? 0;
      const step = world.script[at];
      steps.set(running.id, at + 1);
      if (step === undefined) return;
      const { advanceMs, ...update } = step;
      clock.advance(advanceMs ?? 0);
      const phase = update.phase ?? running.phase;
      const node = phase === 'release' || phase === 'done' ? running.to : running.from;
      const answer = await fetch(`${world.url}/v1/drover/migrations/${running.id}/update`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...update, phase, node_uuid: node, generation: running.generation }),
      });
      if (answer.status !== 200) throw new Error(`the agent's step was refused: ${answer.status} ${await answer.text()}`);
    },
    async close() {
      await app.close();
      await control.stop();
    },
  };
  await world.reportAll();
  return world;
}
