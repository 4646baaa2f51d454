/**
 * The cutover's stop, looked up ahead (docs/DESIGN.md §41). Which container to stop, its first
 * process and its pid namespace take three Docker calls — a listing, an inspection per
 * container, and prepareStop's inspection — 0.4–0.6 s on a loaded node. Started at the
 * cutover's start they outlasted a short hold and were most of the stop (bench/RESULTS.md,
 * "Move under load", session 9); the source job starts them beside each pre-copy round, and
 * the cutover uses the last round's.
 */
import type { ContainerRuntime } from '../container-runtime.ts';
import { containerName } from '../plan/labels.ts';

export interface StopLookup {
  runtime: Pick<ContainerRuntime, 'listContainers' | 'prepareStop'>;
  nodeUuid: string;
  /** null: a move of bare datasets, nothing to stop. */
  application: string | null;
  stopTimeoutSeconds: number;
}

/** The stop's lookups, started: the container, then its first process (DockerRuntime.prepareStop). */
export interface StopAhead {
  found: Promise<{ id: string; running: boolean } | null>;
  prepared: Promise<void>;
  /** Started before the cutover was accepted, while the ordinary planner may still start or restart the container. */
  early: boolean;
}

/** The application's container on this node (null: none, or a move of bare datasets). */
export async function findApplication(o: StopLookup): Promise<{ id: string; running: boolean } | null> {
  if (o.application === null) return null;
  const name = containerName(o.application);
  return (await o.runtime.listContainers(o.nodeUuid)).find((c) => c.name === name) ?? null;
}

/** Starts the lookups; neither promise is left unhandled. */
export function readAheadStop(o: StopLookup, early: boolean): StopAhead {
  const found = findApplication(o);
  found.catch(() => {});
  const prepared = found.then((c) => (c?.running ? o.runtime.prepareStop?.(c.id, o.stopTimeoutSeconds) : undefined));
  prepared.catch(() => {});
  return { found, prepared, early };
}

/**
 * The container the cutover stops. A lookup made before the cutover was accepted is used only
 * when it found the container running: one it found stopped or absent may have been started
 * since, so it is looked up again. One restarted since is inspected again by stopProcesses (its
 * first process is not the one read ahead); one replaced since is not found by its id, and the
 * cutover looks it up again (SourceJob.cutover).
 */
export async function containerToStop(o: StopLookup, ahead: StopAhead): Promise<{ id: string; running: boolean } | null> {
  if (!ahead.early) return ahead.found;
  const found = await ahead.found.catch(() => null);
  return found?.running ? found : findApplication(o);
}
