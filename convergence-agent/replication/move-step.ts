/**
 * A move's replicate step for a dataset this node replicates (DESIGN.md "Moves"), as main.ts
 * wires it for the migration jobs: wait for the dataset's replica steps (`beforeMove`), take
 * the move's options from the scheduler (`forMigration`: `-I`, grid pruning, no rollback of a
 * replica) and — on the first round to a node that holds no copy — send the replicas' base
 * first (`../plan/move-seed.ts`): an existing snapshot whole, then the round `-I` from it, so
 * the new primary shares a snapshot with every replica after the handoff.
 *
 * Costs: one listing of the target (and of each replica) on a move's first round when the
 * target is not a replica known to hold a copy; nothing on later rounds or the final send,
 * which runs while the application is stopped.
 */
import { toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Node } from '#common/model.ts';
import type { PeerSource } from '../migration/peers.ts';
import { planMoveSeed } from '../plan/move-seed.ts';
import type { Peer, ReplicateOptions, ReplicateResult } from '../transfer/types.ts';
import type { ZfsSnapshotInfo } from '../zfs/types.ts';
import type { ReplicationScheduler } from './scheduler.ts';

export interface MoveStepDeps {
  scheduler: Pick<ReplicationScheduler, 'beforeMove' | 'forMigration' | 'replicasOf' | 'learned'>;
  /** The transfer engine (Replicator.replicate). */
  replicate(options: ReplicateOptions): Promise<ReplicateResult>;
  /** A peer's drover snapshots of a dataset, [] when it has none (Replicator.peerSnapshots). */
  peerSnapshots(peer: Peer, datasetId: string): Promise<ZfsSnapshotInfo[]>;
  store: { listSnapshots(datasetId: string): Promise<ZfsSnapshotInfo[]> };
  peers: Pick<PeerSource, 'peerFor'>;
  log: Logger;
}

/** Moves remembered as decided (at most this many; forgotten at their final send). */
const DECIDED_MAX = 1_000;

export class MoveStep {
  /** (migration, target, dataset) whose target holds a base already: no listing again. */
  private readonly decided = new Set<string>();

  constructor(private readonly deps: MoveStepDeps) {}

  /**
   * One step of a move of `options.datasetId`. For a dataset without a replication policy here
   * it is the engine's step with the options as given. Throws what the engine throws, or the
   * target's listing error (the round is then retried like any failed round).
   */
  async replicate(options: ReplicateOptions): Promise<ReplicateResult> {
    const { scheduler } = this.deps;
    await scheduler.beforeMove(options.datasetId, options.signal);
    const move = scheduler.forMigration(options);
    const seed = await this.seed(move);
    if (seed === null) return this.deps.replicate(move);
    const onProgress = move.onProgress;
    const result = await this.deps.replicate({
      ...move,
      ...(onProgress ? { onProgress: (p) => onProgress({ ...p, bytes: seed.bytes + p.bytes }) } : {}),
    });
    // The round's bytes are both streams': the base, whole, and the increment from it.
    return { ...result, bytes: seed.bytes + result.bytes, incremental: false };
  }

  /** Sends the replicas' base to a target with no copy; null when there is nothing to do. */
  private async seed(options: ReplicateOptions): Promise<ReplicateResult | null> {
    const { datasetId, peer, corr } = options;
    const key = `${corr ?? ''}/${peer.id}/${datasetId}`;
    // The final send (no pruning, inside the stopped interval) never lists anything: the
    // pre-copy rounds before it decided.
    if (options.prune === false) {
      this.decided.delete(key);
      return null;
    }
    if (corr !== undefined && this.decided.has(key)) return null;
    const replicas = this.deps.scheduler.replicasOf(datasetId);
    if (replicas === null) return null;
    const decided = (): null => {
      if (corr === undefined) return null;
      if (this.decided.size >= DECIDED_MAX) this.decided.clear();
      this.decided.add(key);
      return null;
    };
    // No other replica to stay common with, or a replica known to hold snapshots (the engine
    // plans from them by guid): nothing to list.
    const others = replicas.filter((r) => r.uuid !== peer.id);
    if (others.length === 0 || replicas.some((r) => r.uuid === peer.id && r.guids !== null && r.guids.size > 0)) return decided();
    const target = await this.deps.peerSnapshots(peer, datasetId);
    if (target.length > 0) return decided();

    const [source, known] = await Promise.all([this.deps.store.listSnapshots(datasetId), Promise.all(others.map((r) => this.listed(datasetId, r)))]);
    const plan = planMoveSeed({ source, target, replicas: known });
    const where = { datasetId, peer: peer.id, ...(corr === undefined ? {} : { corr }) };
    if (plan.kind === 'none') {
      this.deps.log.info({ ...where, reason: plan.reason }, 'move to a node with no copy sends its snapshot whole');
      return decided();
    }
    this.deps.log.info({ ...where, base: plan.snapshot }, 'move to a node with no copy sends the replicas’ base first');
    const result = await this.deps.replicate({
      datasetId,
      peer,
      snapshotName: plan.snapshot,
      prune: false,
      ...(corr === undefined ? {} : { corr }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.setAsideDiverged === undefined ? {} : { setAsideDiverged: options.setAsideDiverged }),
    });
    decided();
    return result;
  }

  /** A replica's guids, listed now (the move waits for its steps, so nothing changes it); its last-seen ones when it cannot be listed. */
  private async listed(datasetId: string, replica: { uuid: string; node: Node | null; guids: ReadonlySet<string> | null }): Promise<ReadonlySet<string> | null> {
    if (replica.node === null) return replica.guids;
    try {
      const peer = await this.deps.peers.peerFor(replica.node);
      const guids = new Set((await this.deps.peerSnapshots(peer, datasetId)).map((s) => s.guid));
      this.deps.scheduler.learned(datasetId, replica.uuid, guids);
      return guids;
    } catch (err) {
      this.deps.log.warn({ datasetId, replica: replica.uuid, err: toDroverError(err) }, 'listing a replica for a move failed: its last-seen snapshots stand in');
      return replica.guids;
    }
  }
}
