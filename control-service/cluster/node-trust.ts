/**
 * Transfer trust, the control service's half (docs/DESIGN.md §23): what a node's report may
 * change of its stored entry. The node certificate that first reported a uuid is bound to it
 * (Node.identity: its CN, also the node's transfer TLS identity); the ssh host-key
 * fingerprint first recorded for it is kept. A later report cannot move either: a report
 * under another certificate is refused, a changed host key is not stored (senders keep
 * pinning the recorded one) and is reported. The operator accepts a new key on purpose
 * (`trustHostKey`). Pure.
 */
import { DroverError } from '#common/errors.ts';
import type { Identity } from '#common/identity.ts';
import type { Desired, HostKeyAcceptance, Node, NodeReport } from '#common/model.ts';
import { replaceAt } from '../desired/desired-index.ts';
import { findNode } from '../desired/lookups.ts';

export interface ReportedNode {
  /** The entry to store. */
  node: Node;
  /** A host-key change the entry does not take: what was recorded, and what the report claims. */
  keyChangeRefused: { recorded: string; claimed: string } | null;
}

/**
 * The node entry `report` makes, given the stored one (`known`), the caller and the uuid
 * its node certificate is bound to (`bound`).
 * @throws DroverError DROVER_NODE_IDENTITY_MISMATCH (403): a node certificate reporting for
 *   another node's uuid, or for a uuid first reported under another node certificate
 */
export function nodeFromReport(report: NodeReport, known: Node | undefined, identity: Identity, bound: string | undefined): ReportedNode {
  checkOwnReport(report.uuid, known, identity, bound);
  const recordedIdentity = known?.identity ?? (identity.role === 'node' ? { name: identity.name } : undefined);
  const recorded = known?.transfer.ssh?.host_key_fingerprint;
  const claimed = report.transfer.ssh?.host_key_fingerprint;
  const changed = recorded !== undefined && claimed !== undefined && recorded !== claimed;
  const transfer = changed && report.transfer.ssh ? { ...report.transfer, ssh: { ...report.transfer.ssh, host_key_fingerprint: recorded } } : report.transfer;
  const node: Node = {
    uuid: report.uuid,
    host: report.host,
    labels: report.labels,
    transfer,
    ...(known?.cordon ? { cordon: known.cordon } : {}),
    ...(recordedIdentity ? { identity: recordedIdentity } : {}),
    ...(known?.host_key_accepted ? { host_key_accepted: known.host_key_accepted } : {}),
  };
  return { node, keyChangeRefused: changed ? { recorded: recorded!, claimed: claimed! } : null };
}

/**
 * Rule own-report (docs/DESIGN.md §23), for the full report and the replication-only one
 * (§38): a node certificate reports only for the uuid it is bound to, and a uuid only under
 * the certificate it first reported with. A user may report for any node.
 * @throws DroverError DROVER_NODE_IDENTITY_MISMATCH (403)
 */
export function checkOwnReport(uuid: string, known: Node | undefined, identity: Identity, bound: string | undefined): void {
  if (identity.role !== 'node') return;
  if (bound !== undefined && bound !== uuid) {
    throw new DroverError('DROVER_NODE_IDENTITY_MISMATCH', `Report refused: rule own-report: node certificate '${identity.name}' belongs to node ${bound}, not ${uuid}.`, {
      detail: { rule: 'own-report', name: identity.name, node_uuid: uuid, bound },
    });
  }
  if (known?.identity !== undefined && known.identity.name !== identity.name) {
    throw new DroverError('DROVER_NODE_IDENTITY_MISMATCH', `Report refused: rule own-report: node ${uuid} joined with node certificate '${known.identity.name}', not '${identity.name}'.`, {
      detail: { rule: 'own-report', name: identity.name, node_uuid: uuid, joined_as: known.identity.name },
    });
  }
}

export interface TrustHostKeyRequest {
  uuid: string;
  /** The fingerprint the node's last report carries; undefined: none since the control service started, or no ssh endpoint in it. */
  claimed: string | undefined;
  /** The fingerprint the operator checked on the node (`--fingerprint`), if given. */
  fingerprint: string | undefined;
  /** The user certificate's name. */
  by: string;
  now: number;
}

/**
 * The operator accepts a node's new ssh host key on purpose (`drover node trust-host-key`,
 * after a reinstall): senders pin it from then on. Without a fingerprint, the key the node
 * reports now is accepted; with one, it must be the key the node reports — or, when the node
 * still reports the pinned key or has not reported, it is pinned ahead of its report. Pure;
 * nothing changes when it throws.
 * @throws DroverError DROVER_NODE_NOT_FOUND (404); DROVER_HOST_KEY_UNCHANGED (409: no ssh
 *   endpoint, or nothing new to accept); DROVER_HOST_KEY_MISMATCH (409: the fingerprint given is
 *   not the one the node reports)
 */
export function trustHostKey(desired: Desired, request: TrustHostKeyRequest): { desired: Desired; accepted: HostKeyAcceptance } {
  const node = findNode(desired, request.uuid);
  const ssh = node.transfer.ssh;
  const detail = { node_uuid: node.uuid, host: node.host };
  if (ssh === undefined) {
    throw new DroverError('DROVER_HOST_KEY_UNCHANGED', `Node ${node.host} has no ssh endpoint (it receives over tls): there is no host key to accept.`, { detail });
  }
  const recorded = ssh.host_key_fingerprint;
  const { claimed, fingerprint } = request;
  const reportsNew = claimed !== undefined && claimed !== recorded;
  if (fingerprint !== undefined && reportsNew && claimed !== fingerprint) {
    throw new DroverError(
      'DROVER_HOST_KEY_MISMATCH',
      `Node ${node.host} reports host key ${claimed}, not ${fingerprint}: nothing changed. Check the key on the node itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before accepting it.`,
      { detail: { ...detail, field: 'fingerprint', fingerprint, claimed, recorded } },
    );
  }
  const next = fingerprint ?? (reportsNew ? claimed : undefined);
  if (next === undefined || next === recorded) {
    const why = next === recorded ? `${recorded} is already the key it is pinned to` : claimed === undefined ? `it has reported no host key since the control service started (give the fingerprint checked on the node: --fingerprint)` : `it reports the key it is pinned to (${recorded})`;
    throw new DroverError('DROVER_HOST_KEY_UNCHANGED', `Node ${node.host} has no new host key to accept: ${why}.`, { detail: { ...detail, recorded } });
  }
  const accepted: HostKeyAcceptance = { fingerprint: next, previous: recorded, by: request.by, at: request.now };
  const entry: Node = { ...node, transfer: { ...node.transfer, ssh: { ...ssh, host_key_fingerprint: next } }, host_key_accepted: accepted };
  return { desired: { ...desired, nodes: replaceAt(desired.nodes, desired.nodes.indexOf(node), entry) }, accepted };
}
