/**
 * The operator's tools for nodes (docs/DESIGN.md §19): cordon, uncordon, drain, a node's
 * scheduling state, and accepting a reinstalled node's new ssh host key (§23). The decisions are the scheduler's (scheduler/schedule.ts moves a draining
 * node's applications off, a bounded number at a time, at every change); these routes only
 * set `Node.cordon` and say what happened.
 */
import type { NodeSchedulingAnswer } from '#common/api.ts';
import { isTerminal } from '#common/migration-protocol.ts';
import type { Desired, Migration } from '#common/model.ts';
import type { HostKeyAcceptance } from '#common/model.ts';
import { trustHostKey } from '../cluster/node-trust.ts';
import type { Control } from '../control.ts';
import { findNode } from '../desired/lookups.ts';
import { instanceName } from '../desired/instances.ts';
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

  router.handle('trustHostKey', async ({ params, body, identity }) => {
    let accepted: HostKeyAcceptance | undefined;
    await control.change((d, ctx) => {
      const claimed = control.observed.get(params.uuid)?.report.transfer.ssh?.host_key_fingerprint;
      const out = trustHostKey(d, { uuid: params.uuid, claimed, fingerprint: body.fingerprint, by: identity.name, now: ctx.now });
      accepted = out.accepted;
      return out.desired;
    });
    const host = control.desired.nodes.find((n) => n.uuid === params.uuid)!.host;
    // The refused-key problem ends here; a report still claiming another key raises it again.
    control.keyChangesRefused.delete(params.uuid);
    const resolved = `ssh host key ${accepted!.fingerprint} accepted by ${accepted!.by} (was ${accepted!.previous})`;
    control.events.emit({ type: 'security', data: { uuid: params.uuid, host, accepted: accepted!, resolved } });
    control.log.warn({ node: params.uuid, host, fingerprint: accepted!.fingerprint, previous: accepted!.previous, by: accepted!.by }, 'node host key accepted');
    return { uuid: params.uuid, host, host_key_accepted: accepted! };
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
  const applications = onNode(desired, uuid);
  const off = desired.migrations.filter((m) => m.from === uuid);
  const migrations = off.filter((m) => !isTerminal(m.phase));
  const known = new Set(before.map((m) => m.id));
  const cannot: { application: string; reason: string }[] = [];
  if (node.cordon?.drain === true) {
    const singles = new Set(desired.applications.filter((a) => a.node_uuid === uuid).map((a) => a.name));
    const since = node.cordon.since;
    for (const name of applications) {
      // An instance leaves by itself once drained (its replacement placed elsewhere): nothing to name.
      if (!singles.has(name)) continue;
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

/**
 * What still runs on a node by the configuration: its single applications by name and the
 * instances placed there (`web.2`, docs/DESIGN.md §30), draining ones included until they leave.
 * Sorted. Pure.
 */
export function onNode(desired: Desired, uuid: string): string[] {
  const names: string[] = [];
  for (const a of desired.applications) {
    if (a.node_uuid === uuid) names.push(a.name);
    for (const i of a.placed ?? []) if (i.node_uuid === uuid) names.push(instanceName(a.name, i.id));
  }
  return names.sort();
}
