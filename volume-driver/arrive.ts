/**
 * Brings a volume's dataset to this node for a Mount: when another node holds it, asks the
 * control service to move it here (with its data: a Migration the agents drive) and waits
 * until this node's agent reports it mounted, or until the deadline. Docker gives a Mount
 * 120 s; the default deadline of 90 s leaves room to answer with a clear Err that says what
 * is still happening (describe.ts).
 *
 * Idempotent: asking again while a move runs joins it; a volume already here costs one
 * round trip.
 */
import { DroverError } from '#common/errors.ts';
import type { Clock } from '#common/clock.ts';
import type { Logger } from '#common/log.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Catalog, View } from './catalog.ts';
import { findByName, type ControlPlane, type DatasetConfig, type MigrationInfo } from './control.ts';
import { describeWait, nodeName } from './describe.ts';
import type { LeaseKeeper } from './lease-keeper.ts';

export interface ArriveOptions {
  control: ControlPlane;
  catalog: Catalog;
  log: Logger;
  me: string;
  clock: Clock;
  timeoutMs: number;
  pollMs: number;
  /** For "is another node using it?" (waits briefly for a lease that is just going). */
  leases: LeaseKeeper;
  /** Aborted when the plugin stops: the wait ends with an Err at once. */
  signal: AbortSignal;
}

export interface Arrived {
  dataset: DatasetConfig;
  path: string;
}

/** How often to ask again for a move when none is visible (the first request may be lost). */
const REQUEST_AGAIN_MS = 5_000;

/** Resolves when `name` is writable here; throws DROVER_VOLUME_* errors with Docker-ready text. */
export async function arrive(name: string, o: ArriveOptions): Promise<Arrived> {
  const started = o.clock.now();
  let view = await o.catalog.fresh();
  let dataset = mustFind(view, name);
  let here = localPath(view, dataset.dataset_id, o.me);
  if (here !== null && dataset.primary === o.me) return { dataset, path: here };

  const seenFailures = new Set<string>();
  let requestedAt = -Infinity;
  if (dataset.primary !== o.me) {
    const holder = await o.leases.heldElsewhere(dataset.dataset_id);
    if (holder) throw await o.leases.inUse(name, holder);
    for (const m of await o.control.listMigrations()) if (m.phase === 'failed') seenFailures.add(m.id);
    await requestMove(dataset, o);
    requestedAt = o.clock.now();
  }

  let migration: MigrationInfo | null = null;
  // The control service may restart while a move runs: a retryable failure only ends the
  // Mount at the deadline, and the Err then says what went wrong last.
  let trouble: string | null = null;
  const tolerate = (err: unknown): void => {
    if (!(err instanceof DroverError && err.retryable)) throw err;
    trouble = err.message;
    o.log.warn({ err, volume: name }, 'control service call failed while waiting; still waiting');
  };
  for (;;) {
    if (o.signal.aborted) {
      throw new DroverError('DROVER_PLUGIN_STOPPING', `the drover volume plugin is stopping; volume "${name}" was not mounted`, { retryable: true });
    }
    try {
      migration = await watchMigrations(name, dataset, seenFailures, o);
      if (!migration && dataset.primary !== o.me && o.clock.now() - requestedAt >= REQUEST_AGAIN_MS) {
        await requestMove(dataset, o);
        requestedAt = o.clock.now();
      }
      trouble = null;
    } catch (err) {
      tolerate(err);
    }

    const waited = o.clock.now() - started;
    if (waited >= o.timeoutMs) {
      const state = view.states.find((s) => s.dataset_id === dataset.dataset_id);
      const situation = { name, datasetId: dataset.dataset_id, primary: dataset.primary, holder: state?.primary ?? null, migration, waitedMs: waited, nodes: await o.catalog.nodes(), me: o.me };
      throw new DroverError('DROVER_VOLUME_NOT_READY', describeWait(situation) + (trouble ? ` Last error: ${trouble}` : ''), {
        retryable: true,
        detail: { dataset_id: dataset.dataset_id },
      });
    }
    await o.clock.sleep(Math.min(o.pollMs, o.timeoutMs - waited), o.signal);
    try {
      view = await o.catalog.fresh();
      dataset = mustFind(view, name);
      here = localPath(view, dataset.dataset_id, o.me);
      if (here !== null && dataset.primary === o.me) {
        o.log.info({ volume: name, datasetId: dataset.dataset_id, waitedMs: o.clock.now() - started }, 'volume arrived');
        return { dataset, path: here };
      }
    } catch (err) {
      tolerate(err);
    }
  }
}

/**
 * The move of this dataset towards this node, if one is under way. Throws when a new move
 * here failed, or when the dataset is being moved to another node.
 */
async function watchMigrations(name: string, dataset: DatasetConfig, seenFailures: Set<string>, o: ArriveOptions): Promise<MigrationInfo | null> {
  const migrations = (await o.control.listMigrations()).filter((m) => m.dataset_ids.includes(dataset.dataset_id));
  const failed = migrations.find((m) => m.phase === 'failed' && m.to === o.me && !seenFailures.has(m.id));
  if (failed) {
    const from = nodeName(failed.from, await o.catalog.nodes(), o.me);
    throw new DroverError('DROVER_VOLUME_MOVE_FAILED', `moving volume "${name}" to this node failed: ${failed.error ?? 'no reason given'}; it stays on ${from}`, {
      detail: { migration: failed.id },
    });
  }
  const active = migrations.filter((m) => !isTerminal(m.phase));
  const away = active.find((m) => m.to !== o.me);
  if (away) {
    const to = nodeName(away.to, await o.catalog.nodes(), o.me);
    throw new DroverError('DROVER_VOLUME_MOVING_AWAY', `volume "${name}" is being moved to ${to} (migration ${away.id.slice(0, 8)} in ${away.phase})`);
  }
  return active.find((m) => m.to === o.me) ?? null;
}

async function requestMove(dataset: DatasetConfig, o: ArriveOptions): Promise<void> {
  try {
    await o.control.moveDataset(dataset.dataset_id, o.me);
    o.log.info({ datasetId: dataset.dataset_id, from: dataset.primary }, 'move requested');
  } catch (err) {
    if (err instanceof DroverError && (err.code === 'DROVER_CONTROL_CONFLICT' || err.code === 'DROVER_CONTROL_HTTP') && !err.retryable) {
      throw new DroverError('DROVER_VOLUME_MOVE_REFUSED', `the control service refused to move volume "${dataset.metadata.name}" to this node: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function mustFind(view: View, name: string): DatasetConfig {
  const dataset = findByName(view.datasets, name);
  if (!dataset) throw new DroverError('DROVER_VOLUME_NOT_FOUND', `no drover volume named "${name}" (it may have been removed)`);
  return dataset;
}

/** The mountpoint of a dataset on this node when the agents report it writable here. */
export function localPath(view: View, datasetId: string, me: string): string | null {
  const state = view.states.find((s) => s.dataset_id === datasetId && s.primary === me);
  return state?.path ?? null;
}

