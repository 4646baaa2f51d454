/**
 * The receiving agent of `bench/transfer.ts`, in its own process (as on a real second node):
 * a TransferServer over the node's pool. Prints `{"port":N}` once listening; stops on SIGTERM.
 * Usage: tsx bench/transfer-receiver.ts '<json: {pool, address, id, ca, cert, key}>'
 */
import { LocalPeer } from '../convergence-agent/transfer/local-peer.ts';
import { TransferServer } from '../convergence-agent/transfer/tls-server.ts';
import { ZfsStore } from '../convergence-agent/zfs/zfs.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as { pool: string; address: string; id: string; ca: string; cert: string; key: string };
const server = new TransferServer({
  peer: new LocalPeer(config.id, new ZfsStore({ pool: config.pool })),
  identity: { ca: config.ca, cert: config.cert, key: config.key },
  host: config.address,
  port: 0,
});
const { port } = await server.listen();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
