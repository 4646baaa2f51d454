import { describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from '#common/certificates.ts';
import type { ZfsDatasetInfo, ZfsSnapshotInfo } from '../zfs/types.ts';
import type { LocalPeer } from './local-peer.ts';
import { TlsPeer } from './tls-peer.ts';
import { TransferServer } from './tls-server.ts';
import type { PeerStep } from './types.ts';

const DATASET = { datasetId: 'd', name: 'p/drover/d', mountpoint: null, mounted: false, readonly: true, refquota: null, usedBytes: 1, referencedBytes: 1 } as ZfsDatasetInfo;
const SNAPSHOTS = [{ snapshot: 'drover-20261207T000000000Z-0001', guid: '7', createtxg: 3, userrefs: 1 }] as ZfsSnapshotInfo[];

// The engine's look at the replica over tls (docs/DESIGN.md §40, round 2): one request, one
// zfs command on the receiver, where the receiver offers it; the two reads where it does not.
describe('getState over the tls transport', () => {
  async function serve(old: boolean) {
    const ca = await createCa('drover test cluster CA');
    const pair = (name: string) => issueCertificate({ ca, commonName: name, organization: 'drover-node', ipAddresses: ['127.0.0.1'] });
    const [receiver, sender] = [await pair('n2'), await pair('n1')];
    const asked: string[] = [];
    const step = {
      datasetId: 'd',
      getDataset: async () => (asked.push('getDataset'), DATASET),
      listSnapshots: async () => (asked.push('listSnapshots'), SNAPSHOTS),
      state: async () => (asked.push('state'), { dataset: DATASET, snapshots: SNAPSHOTS }),
      end: async () => {},
    } as unknown as PeerStep;
    const local = { features: async () => ({}), beginStep: async () => step } as unknown as LocalPeer;
    const server = new TransferServer({ peer: local, identity: { ...receiver, ca: ca.cert }, host: '127.0.0.1', port: 0, pump: null });
    if (old) {
      // An agent from before getState: its begin answer names no such request, and it closes
      // the connection on a request it does not know.
      const inner = server as unknown as { answer: (request: { op: string }, ...rest: unknown[]) => Promise<unknown> };
      const answer = inner.answer.bind(server);
      inner.answer = async (request, ...rest) => {
        if (request.op === 'getState') throw new Error('an older receiver never gets here');
        const value = await answer(request, ...rest);
        return request.op === 'begin' ? { dataChannels: [] } : value;
      };
    }
    const { port } = await server.listen();
    const peer = new TlsPeer({ id: 'node-2', host: '127.0.0.1', port, identity: { ...sender, ca: ca.cert }, expectedName: 'n2', pump: null });
    return { server, peer, asked };
  }

  it('asks the dataset and its snapshots in one request of a receiver that offers it', async () => {
    const { server, peer, asked } = await serve(false);
    try {
      const step = await peer.beginStep('d');
      expect(step.state).toBeDefined();
      expect(await step.state!()).toEqual({ dataset: DATASET, snapshots: SNAPSHOTS });
      expect(asked).toEqual(['state']);
      await step.end();
    } finally {
      await server.close();
    }
  });

  it('never sends it to a receiver that does not offer it: the engine asks the two reads', async () => {
    const { server, peer, asked } = await serve(true);
    try {
      const step = await peer.beginStep('d');
      expect(step.state).toBeUndefined();
      expect(await step.getDataset()).toEqual(DATASET);
      expect(await step.listSnapshots()).toEqual(SNAPSHOTS);
      expect(asked).toEqual(['getDataset', 'listSnapshots']);
      await step.end();
    } finally {
      await server.close();
    }
  });
});
