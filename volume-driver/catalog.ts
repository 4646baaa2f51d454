/**
 * A cached view of the cluster's datasets for the calls Docker makes constantly (Get, List,
 * Path): they answer from memory and refresh in the background, so `docker run` never waits
 * on the control service just to learn that a volume exists (reference §2, "answer Get … in
 * under a few ms"). Mount, Create and Remove ask for a fresh view.
 *
 * Concurrent refreshes are coalesced into one round trip. When the control service cannot be
 * reached, the last view is served (stale beats "no such volume": Docker forgets a volume's
 * driver binding when Get says it is gone).
 */
import { systemClock, type Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import type { ControlPlane, DatasetConfig, DatasetState, NodeInfo } from './control.ts';

export interface View {
  /** Clock time (ms) when it was fetched. */
  at: number;
  datasets: DatasetConfig[];
  states: DatasetState[];
}

export interface CatalogOptions {
  control: ControlPlane;
  log: Logger;
  clock?: Clock;
  /** How old a view may be before `recent` refreshes it; default 2 s. */
  ttlMs?: number;
}

const NODES_TTL_MS = 30_000;

export class Catalog {
  private view: View | null = null;
  private inflight: Promise<View> | null = null;
  private nodesCache: { at: number; nodes: NodeInfo[] } | null = null;
  private nodesInflight: Promise<void> | null = null;
  private generation = 0;
  private inflightGeneration = -1;
  private readonly control: ControlPlane;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly ttlMs: number;

  constructor(options: CatalogOptions) {
    this.control = options.control;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    this.ttlMs = options.ttlMs ?? 2_000;
  }

  /** A view fetched after this call started (one shared round trip for concurrent callers). */
  fresh(): Promise<View> {
    // A refresh that started before an invalidation may miss the change that caused it.
    if (this.inflight && this.inflightGeneration === this.generation) return this.inflight;
    const generation = this.generation;
    const fetching: Promise<View> = (async () => {
      const at = this.clock.now();
      const [datasets, states] = await Promise.all([this.control.listDatasets(), this.control.datasetStates()]);
      const view = { at, datasets, states };
      if (generation === this.generation) this.view = view;
      return view;
    })().finally(() => {
      if (this.inflight === fetching) this.inflight = null;
    });
    this.inflight = fetching;
    this.inflightGeneration = generation;
    return fetching;
  }

  /**
   * The cached view when younger than the TTL; an older one is returned too, with a refresh
   * started behind it. Only when there is no view at all does it wait for the control service.
   */
  async recent(): Promise<View> {
    const view = this.view;
    if (!view) return this.fresh();
    if (this.clock.now() - view.at > this.ttlMs && !this.inflight) {
      this.fresh().catch((err) => this.log.warn({ err }, 'catalog refresh failed; serving the last view'));
    }
    return view;
  }

  /** The last view, or null; never waits. */
  get last(): View | null {
    return this.view;
  }

  /** Forgets the cached view after a write of ours, so the next `recent` fetches. */
  invalidate(): void {
    this.generation++;
    this.view = null;
  }

  /**
   * Known nodes, for messages and Status that name a node by its address. Waits only the
   * first time; later an old list is returned while a new one is fetched. [] when unreachable.
   */
  async nodes(): Promise<NodeInfo[]> {
    const cached = this.nodesCache;
    if (cached && this.clock.now() - cached.at < NODES_TTL_MS) return cached.nodes;
    this.nodesInflight ??= this.control
      .listNodes()
      .then((nodes) => {
        this.nodesCache = { at: this.clock.now(), nodes };
      })
      .catch((err) => {
        // Keep the old list (or none) for a TTL rather than asking on every Get.
        this.nodesCache = { at: this.clock.now(), nodes: this.nodesCache?.nodes ?? [] };
        this.log.debug({ err }, 'node list unavailable');
      })
      .finally(() => {
        this.nodesInflight = null;
      });
    if (!cached) await this.nodesInflight;
    return this.nodesCache?.nodes ?? [];
  }
}
