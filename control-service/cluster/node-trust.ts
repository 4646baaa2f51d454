/**
 * Transfer trust, the control service's half (docs/DESIGN.md §23): what a node's report may
 * change of its stored entry. The node certificate that first reported a uuid is bound to it
 * (Node.identity: its CN, also the node's transfer TLS identity); the ssh host-key
 * fingerprint first recorded for it is kept. A later report cannot move either: a report
 * under another certificate is refused, a changed host key is not stored (senders keep
 * pinning the recorded one) and is reported. Pure.
 */
import { DroverError } from '#common/errors.ts';
import type { Identity } from '#common/identity.ts';
import type { Node, NodeReport } from '#common/model.ts';

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
  if (identity.role === 'node') {
    if (bound !== undefined && bound !== report.uuid) {
      throw new DroverError('DROVER_NODE_IDENTITY_MISMATCH', `Report refused: rule own-report: node certificate '${identity.name}' belongs to node ${bound}, not ${report.uuid}.`, {
        detail: { rule: 'own-report', name: identity.name, node_uuid: report.uuid, bound },
      });
    }
    if (known?.identity !== undefined && known.identity.name !== identity.name) {
      throw new DroverError('DROVER_NODE_IDENTITY_MISMATCH', `Report refused: rule own-report: node ${report.uuid} joined with node certificate '${known.identity.name}', not '${identity.name}'.`, {
        detail: { rule: 'own-report', name: identity.name, node_uuid: report.uuid, joined_as: known.identity.name },
      });
    }
  }
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
  };
  return { node, keyChangeRefused: changed ? { recorded: recorded!, claimed: claimed! } : null };
}
