/**
 * drover-fence-watchdog: wiring only. Started by drover-agent (fence-watchdog/arm.ts) with the
 * node's docker socket, pool and fence grace; armed over stdin (deadline.ts). At a passed
 * deadline it does what the agent's own fence does (fence.ts `fenceApplications`): stops the
 * failover-enabled containers and sets their datasets read-only — so a paused agent's node is
 * fenced before the control service may fail over (docs/DESIGN.md §18). Its records go to the
 * agent's log.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { FENCE_CHECK_MS } from '#common/fence-timing.ts';
import { createLogger } from '#common/log.ts';
import { DockerRuntime } from '../docker.ts';
import { fenceApplications } from '../fence.ts';
import { ZfsStore } from '../zfs/zfs.ts';
import { WatchdogDeadline } from './deadline.ts';

function fail(message: string): never {
  process.stderr.write(`drover-fence-watchdog: ${message}\n`);
  process.exit(2);
}

let args: { [k: string]: string | undefined };
try {
  args = parseArgs({
    options: {
      'docker-socket': { type: 'string' },
      pool: { type: 'string' },
      'mount-root': { type: 'string' },
      'node-uuid': { type: 'string' },
      'stop-timeout-seconds': { type: 'string' },
    },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const missing = ['docker-socket', 'pool', 'node-uuid', 'stop-timeout-seconds'].filter((k) => !args[k]);
if (missing.length > 0) fail(`missing ${missing.map((k) => `--${k}`).join(', ')}`);
const stopTimeoutSeconds = Number(args['stop-timeout-seconds']);
if (!Number.isInteger(stopTimeoutSeconds) || stopTimeoutSeconds < 0) fail('--stop-timeout-seconds: must be a whole number of seconds');

const log = createLogger('drover-fence-watchdog');
const store = new ZfsStore({ pool: args.pool!, mountRoot: args['mount-root'] ?? null, log });
const actions = {
  runtime: new DockerRuntime({ socketPath: args['docker-socket']!, callTimeoutMs: stopTimeoutSeconds * 1000 + 5_000 }),
  setReadonly: (id: string, readonly: boolean) => store.setReadonly(id, readonly),
  log,
  nodeUuid: args['node-uuid']!,
  stopTimeoutSeconds,
};
const state = new WatchdogDeadline();
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const refused = state.take(line);
  if (refused !== null) log.warn({ refused }, 'message from the agent refused');
});
input.on('close', () => state.end());

let fencing = false;
const look = (): void => {
  if (fencing) return;
  const step = state.next(process.hrtime.bigint());
  if (step.kind === 'exit') {
    log.info({ why: step.why }, 'fence watchdog ended');
    process.exit(0);
  }
  if (step.kind !== 'fence') return;
  fencing = true;
  log.warn({ apps: step.apps, datasetIds: step.datasetIds, lateMs: Math.round(step.lateMs) }, 'the agent did not renew its lease in time: fencing from outside it');
  void fenceApplications(actions, new Set(step.apps), step.datasetIds)
    .then(() => log.warn({ apps: step.apps }, 'fenced from outside the agent'))
    .finally(() => {
      fencing = false;
      look();
    });
};
setInterval(look, FENCE_CHECK_MS);
process.on('SIGTERM', () => process.exit(0));
log.info({ pid: process.pid, node: actions.nodeUuid }, 'fence watchdog started');
