import { describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from '#common/certificates.ts';
import type { LocalPeer } from './local-peer.ts';
import { TlsPeer } from './tls-peer.ts';
import { TransferServer } from './tls-server.ts';

// The agent's half of transfer trust (docs/DESIGN.md §23): a sender takes only the receiver
// whose certificate carries the name the control service recorded for that node.
describe('a tls transfer to a node', () => {
  it("connects when the receiver's certificate is the node's recorded identity, and refuses another node's certificate of the same CA", async () => {
    const ca = await createCa('drover test cluster CA');
    const pair = (name: string) => issueCertificate({ ca, commonName: name, organization: 'drover-node', ipAddresses: ['127.0.0.1'] });
    const [receiver, sender] = [await pair('n2'), await pair('n1')];
    const features = { large_blocks: true };
    const server = new TransferServer({ peer: { features: async () => features } as unknown as LocalPeer, identity: { ...receiver, ca: ca.cert }, host: '127.0.0.1', port: 0, pump: null });
    const { port } = await server.listen();
    try {
      const peer = (expectedName: string) => new TlsPeer({ id: 'node-2', host: '127.0.0.1', port, identity: { ...sender, ca: ca.cert }, expectedName, pump: null });
      expect(await peer('n2').features()).toEqual(features);
      await expect(peer('n3').features()).rejects.toMatchObject({ code: 'DROVER_TLS_CONNECT_FAILED', message: expect.stringContaining("not 'n3'") });
    } finally {
      await server.close();
    }
  });
});
