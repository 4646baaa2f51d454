/**
 * The application's `move.before_stop` hook (docs/DESIGN.md §5): a command exec'd in its
 * running container right before the last pre-copy round and the cutover, while clients
 * are still served. It moves work out of the stopped interval — PostgreSQL's `CHECKPOINT`
 * makes the shutdown checkpoint short, and the round after the hook pre-copies what it
 * wrote, so the final delta is small too.
 *
 * A hook is help, never a gate: whatever it does or fails to do, the stop that follows makes
 * the data consistent (every acknowledged write is on disk once the application's processes
 * are gone). So a failed, timed-out or skipped hook is logged and reported, and the move
 * goes on. Nothing the operator wrote reaches a shell: the command is an argv for docker exec.
 */
import { toDroverError } from '#common/errors.ts';
import type { Logger } from '#common/log.ts';
import type { Clock } from '#common/clock.ts';
import type { MoveHook } from '#common/model.ts';
import type { ContainerRuntime } from '../container-runtime.ts';
import { containerName } from '../plan/labels.ts';

export interface HookOutcome {
  outcome: 'ok' | 'failed' | 'skipped';
  exitCode: number | null;
  ms: number;
  /** Why it failed or was skipped. */
  detail: string | null;
}

export interface BeforeStopDeps {
  nodeUuid: string;
  runtime: Pick<ContainerRuntime, 'listContainers' | 'exec'>;
  clock: Clock;
  log: Logger;
}

/** Runs `hook` in `application`'s running container on this node. Never throws. */
export async function runBeforeStop(deps: BeforeStopDeps, application: string, hook: MoveHook): Promise<HookOutcome> {
  const began = deps.clock.now();
  const done = (outcome: HookOutcome['outcome'], exitCode: number | null, detail: string | null): HookOutcome => {
    const result = { outcome, exitCode, ms: deps.clock.now() - began, detail };
    const level = outcome === 'ok' ? 'info' : 'warn';
    deps.log[level]({ application, command: hook.command, ...result }, 'before-stop hook ran');
    return result;
  };
  try {
    const name = containerName(application);
    const container = (await deps.runtime.listContainers(deps.nodeUuid)).find((c) => c.name === name);
    if (!container?.running) return done('skipped', null, 'the container is not running');
    const { exitCode } = await deps.runtime.exec(container.id, hook.command, hook.timeout_seconds * 1000);
    return exitCode === 0 ? done('ok', 0, null) : done('failed', exitCode, `exited with ${exitCode}`);
  } catch (err) {
    return done('failed', null, toDroverError(err).message);
  }
}
