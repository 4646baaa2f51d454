/**
 * The operator's tools for nodes (docs/DESIGN.md §19): cordon, uncordon, drain, and a node's
 * scheduling state. The decisions are the scheduler's (scheduler/schedule.ts moves a draining
 * node's applications off, a bounded number at a time, at every change); these routes only
 * set `Node.cordon` and say what happened.
 */
import type { NodeSchedulingAnswer } from '#common/api.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Desired, Migration } from '#common/model.ts';
import type { Control } from '../control.ts';
import { findNode } from '../desired/lookups.ts';
import { cordonNode, uncordonNode } from '../desired/nodes.ts';
import type { Router } from '../http/router.ts';

export function nodeOpRoutes(router: Router, control: Control): void {
  const answer = (uuid: string, before: readonly Migration[] = control.desired.migrations): NodeSchedulingAnswer => schedulingOf(control.desired, uuid, control.unschedulable, before);

  router.handle('nodeScheduling', async ({ params }) => answer(params.uuid));

  router.handle('cordonNode', async ({ params }) => {
    await control.change((d, ctx) => cordonNode(d, params.uuid, false, ctx.now));
    control.log.info({ node: params.uuid }, 'node cordoned');
    return answer(params.uuid);
  });

  router.handle('uncordonNode', async ({ params }) => {
    await control.change((d) => uncordonNode(d, params.uuid));
    control.log.info({ node: params.uuid }, 'node uncordoned');
    return answer(params.uuid);
  });

  router.handle('drainNode', async ({ params }) => {
    const before = control.desired.migrations;
    await control.change((d, ctx) => cordonNode(d, params.uuid, true, ctx.now));
    const out = answer(params.uuid, before);
    control.log.info({ node: params.uuid, started: out.started.map((m) => m.id), left: out.applications.length }, 'node draining');
    return out;
  });
}

/**
 * A node's cordon or drain as the API answers it. Pure. `unschedulable`: the scheduler's
 * reasons from the last change; `before`: the migrations before this call (those not in it
 * were started by it).
 * @throws DroverError DROVER_NODE_NOT_FOUND (404).
 */
export function schedulingOf(desired: Desired, uuid: string, unschedulable: ReadonlyMap<string, string>, before: readonly Migration[]): NodeSchedulingAnswer {
  const node = findNode(desired, uuid);
  const applications = desired.applications.filter((a) => a.node_uuid === uuid).map((a) => a.name).sort();
  const off = desired.migrations.filter((m) => m.from === uuid);
  const migrations = off.filter((m) => !isTerminal(m.phase));
  const known = new Set(before.map((m) => m.id));
  const cannot: { application: string; reason: string }[] = [];
  if (node.cordon?.drain === true) {
    const since = node.cordon.since;
    for (const name of applications) {
      if (migrations.some((m) => m.application === name)) continue;
      const failed = off.filter((m) => m.application === name && m.phase === 'failed' && m.started_at >= since).at(-1);
      const reason = failed ? `its move failed: ${failed.error ?? 'no reason given'}; drain again to retry` : unschedulable.get(name);
      if (reason !== undefined) cannot.push({ application: name, reason });
    }
  }
  return {
    uuid,
    host: node.host,
    cordoned: node.cordon !== undefined,
    draining: node.cordon?.drain === true,
    since: node.cordon?.since ?? null,
    applications,
    migrations,
    started: off.filter((m) => !known.has(m.id)),
    cannot_move: cannot,
  };
}
