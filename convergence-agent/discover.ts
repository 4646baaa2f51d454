/**
 * Discovery: what is on this node now (zfs, docker), merged with what only the agent
 * knows (health, restart counts). A source that cannot be read is `null`, never `[]`:
 * unknown is not empty.
 */
import type { AgentDesired } from '#common/channel.ts';
import type { Logger } from '#common/log.ts';
import type { ContainerRuntime, RuntimeContainer } from './container-runtime.ts';
import type { GateState, Gates } from './gate/gates.ts';
import type { ProbeTarget } from './health/monitor.ts';
import { LABEL_APP, LABEL_CONFIG_HASH, LABEL_GATE, LABEL_GENERATION, containerName } from './plan/labels.ts';
import type { Health, LocalContainer, LocalObserved } from './plan/types.ts';
import type { RestartLedger } from './restart-ledger.ts';
import type { DatasetStore, DivergedCopyInfo, ZfsDatasetInfo, ZfsSnapshotInfo } from './zfs/types.ts';

export interface RawObserved {
  datasets: ZfsDatasetInfo[] | null;
  snapshots: Record<string, ZfsSnapshotInfo[]> | null;
  containers: RuntimeContainer[] | null;
  /** Copies kept under `<pool>/drover-diverged/` (docs/DESIGN.md §18); null: not listed; absent: the store keeps none. */
  diverged?: DivergedCopyInfo[] | null;
  /** Gate id → its state, for the gated containers (read from the gate directories). */
  gates?: Record<string, GateState>;
}

export interface DiscoverDeps {
  store: Pick<DatasetStore, 'listAll' | 'listDiverged' | 'listKeptDiverged'>;
  runtime: Pick<ContainerRuntime, 'listContainers'>;
  /** Absent where this node cannot gate containers: a gated container then reads `missing`. */
  gates?: Pick<Gates, 'state'> | null;
  nodeUuid: string;
  log: Logger;
}

/** Reads zfs and docker; each failure is logged and leaves its part `null`. */
export async function discoverRaw(deps: DiscoverDeps): Promise<RawObserved> {
  // The rejoined copies come with the pool's listing where the store can (one zfs command a
  // pass less): the kept ones are then listed alone, and both are known only when both reads
  // succeeded.
  const joint = deps.store.listDiverged !== undefined && deps.store.listKeptDiverged !== undefined;
  const [zfs, containers, listed] = await Promise.all([
    readDatasets(deps).catch((err: unknown) => {
      deps.log.warn({ err }, 'datasets not listed');
      return null;
    }),
    deps.runtime.listContainers(deps.nodeUuid).catch((err: unknown) => {
      deps.log.warn({ err }, 'containers not listed');
      return null;
    }),
    deps.store.listDiverged === undefined
      ? Promise.resolve(undefined)
      : (joint ? deps.store.listKeptDiverged!() : deps.store.listDiverged()).catch((err: unknown) => {
          deps.log.warn({ err }, 'diverged copies not listed');
          return null;
        }),
  ]);
  let diverged = listed;
  if (joint && listed) diverged = zfs?.rejoined === undefined ? null : [...listed, ...zfs.rejoined];
  const gates: Record<string, GateState> = {};
  if (containers && deps.gates) {
    const ids = [...new Set(containers.map((c) => c.labels[LABEL_GATE]).filter((id): id is string => id !== undefined))];
    await Promise.all(
      ids.map(async (id) => {
        gates[id] = await deps.gates!.state(id).catch((): GateState => ({ state: 'missing' }));
      }),
    );
  }
  return { datasets: zfs?.datasets ?? null, snapshots: zfs?.snapshots ?? null, containers, gates, ...(diverged === undefined ? {} : { diverged }) };
}

/** The gate of a container as the planner sees it; null for an ordinary container. */
function gateOf(c: RuntimeContainer, gates: Record<string, GateState> | undefined): LocalContainer['gate'] {
  const id = c.labels[LABEL_GATE];
  if (id === undefined) return null;
  const g = gates?.[id] ?? { state: 'missing' };
  return { id, state: g.state, openedAt: g.state === 'open' ? g.openedAt : null };
}

function readDatasets(deps: DiscoverDeps): Promise<{ datasets: ZfsDatasetInfo[]; snapshots: Record<string, ZfsSnapshotInfo[]>; rejoined?: DivergedCopyInfo[] }> {
  return deps.store.listAll();
}

/**
 * Pure: the probe targets for the running containers whose application has a health check.
 * http and tcp checks connect to the published host port of the checked port, else to the
 * container's own address.
 */
export function healthTargets(desired: AgentDesired | null, containers: RuntimeContainer[] | null, gates?: Record<string, GateState>): ProbeTarget[] {
  if (desired === null || containers === null) return [];
  const targets: ProbeTarget[] = [];
  for (const app of desired.applications) {
    const check = app.health_check;
    if (!check) continue;
    const c = containers.find((x) => x.name === containerName(app.name));
    if (!c || !c.running || c.startedAt === null) continue;
    // A gated container's application has not run yet: it is probed from the gate's opening.
    const gate = gateOf(c, gates);
    if (gate !== null && gate.state !== 'open') continue;
    const startedAt = Math.max(c.startedAt, gate?.openedAt ?? 0);
    let endpoint: ProbeTarget['endpoint'] = null;
    if (check.type !== 'exec') {
      const published = c.published.find((p) => p.internal === check.port && p.protocol === undefined);
      if (published) endpoint = { host: published.host, port: published.host_port };
      else if (c.ipAddress) endpoint = { host: c.ipAddress, port: check.port };
    }
    targets.push({ containerId: c.id, application: app.name, startedAt, check, endpoint });
  }
  return targets;
}

/** Pure: engine facts + the agent's memory → the planner's view of this node. */
export function toObserved(
  raw: RawObserved,
  health: (containerId: string) => Health,
  ledger: Pick<RestartLedger, 'get'>,
): LocalObserved {
  const containers =
    raw.containers?.map((c): LocalContainer => {
      const record = ledger.get(c.id);
      const generation = Number.parseInt(c.labels[LABEL_GENERATION] ?? '0', 10);
      return {
        id: c.id,
        name: c.name,
        app: c.labels[LABEL_APP] ?? c.name.replace(/^drover-/, ''),
        image: c.image,
        generation: Number.isFinite(generation) ? generation : 0,
        configHash: c.labels[LABEL_CONFIG_HASH] ?? '',
        status: c.status,
        running: c.running,
        exitCode: c.exitCode,
        oomKilled: c.oomKilled,
        startedAt: c.startedAt,
        finishedAt: c.finishedAt,
        mountSources: c.mountSources,
        published: c.published,
        ipAddress: c.ipAddress,
        health: c.running ? health(c.id) : 'unknown',
        restartCount: record.restarts,
        consecutiveRestarts: record.consecutive,
        gate: gateOf(c, raw.gates),
      };
    }) ?? null;
  return { datasets: raw.datasets, snapshots: raw.snapshots, containers, ...(raw.diverged === undefined ? {} : { diverged: raw.diverged }) };
}
