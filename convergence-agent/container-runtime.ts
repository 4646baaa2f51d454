/**
 * What the agent needs from a container engine, as a small interface (docs/DESIGN.md
 * §13). docker.ts implements it with dockerode; testing/fake-container-runtime.ts
 * in memory. Errors are DroverErrors classified by the implementation.
 */
import type { GateMount } from './gate/gates.ts';
import type { ContainerSpec } from './plan/types.ts';

/** A container as the engine reports it (no agent memory: no health, no restart counts). */
export interface RuntimeContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  status: string;
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  mountSources: string[];
  /** Internal port → host address and port, as published. */
  published: { internal: number; host: string; host_port: number; protocol?: 'udp' }[];
  ipAddress: string | null;
}

export interface ExecResult {
  exitCode: number;
}

export interface ContainerRuntime {
  /** Containers labelled `drover.node=<nodeUuid>`, running or not. */
  listContainers(nodeUuid: string): Promise<RuntimeContainer[]>;
  /**
   * Creates and starts the container; pulls the image first when it is not present. With
   * `gate`, the container starts gated (gate/README.md): its first process waits behind the
   * gate, its datasets' binds use rslave propagation (they are mounted after it started),
   * and it is labelled `drover.gate=<gate id>`.
   */
  createAndStart(spec: ContainerSpec, gate?: GateMount): Promise<void>;
  /** Starts a stopped container; restarts a running one. */
  restart(containerId: string, stopTimeoutSeconds: number): Promise<void>;
  /**
   * Stops gracefully (the container's stop signal, SIGTERM by default, then SIGKILL after the
   * container's own grace period — Compose's `stop_grace_period` — or else the timeout);
   * already stopped is fine. `restart` and `stopProcesses` use the same signal and grace.
   */
  stop(containerId: string, stopTimeoutSeconds: number): Promise<void>;
  /**
   * Stops gracefully like `stop`, but resolves as soon as none of the container's processes
   * runs any more (all its writes are made), which can be well before the engine finished
   * tearing the container down; a later `stop` or `remove` waits for that. Falls back to
   * `stop` where the processes cannot be seen.
   */
  stopProcesses(containerId: string, stopTimeoutSeconds: number): Promise<void>;
  /**
   * Optional: reads ahead what `stopProcesses` needs (the container's process, its namespace,
   * its grace), so the stop itself starts with the signal. Used only while that process still
   * runs as the container's first process when the stop comes; otherwise it reads again.
   */
  prepareStop?(containerId: string, stopTimeoutSeconds: number): Promise<void>;
  /** Removes a stopped container; a missing one is fine. */
  remove(containerId: string): Promise<void>;
  /** Runs `command` (no shell) in the container; rejects with DROVER_EXEC_TIMEOUT after `timeoutMs`. */
  exec(containerId: string, command: string[], timeoutMs: number): Promise<ExecResult>;
}
