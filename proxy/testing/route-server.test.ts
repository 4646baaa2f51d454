import { routeServiceContract } from './route-server.contract.ts';
import { RouteServer, route } from './route-server.ts';

// The proxy's tests run on this stand-in; it keeps the contract the real control service
// keeps (test/proxy/route-server.test.ts).
routeServiceContract('the RouteServer stand-in', async () => {
  const server = new RouteServer();
  await server.start();
  let port = 20_000;
  return {
    baseUrl: server.url,
    change: async () => void server.publish([...server.table.routes, route(`app${port}`, port++, null)]),
    acked: async (node, version) => server.acks.some((a) => a.node_uuid === node && a.version >= version),
    close: () => server.stop(),
  };
});
