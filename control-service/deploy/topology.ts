import { z } from 'zod';
import { Ipv4, type Node } from '#common/model.ts';
import { Scope } from './scope.ts';
import type { YamlSource } from './yaml-source.ts';

const Topology = z
  .object({
    version: z.literal(1, { error: 'must be 1' }),
    nodes: z.record(z.string(), z.array(z.string(), { error: 'must be a list of application names' })).nullable(),
  })
  .strict();

/**
 * Reads Flocker's deployment format (`version: 1`, `nodes: { "<ipv4>": [app, …] }`) into
 * application name → node uuid. Every address must be a known node's ("No known node with
 * address …", as Flocker 1.x said); every application must be in the application file and
 * appear once. Applications the topology does not name are left to the scheduler.
 */
export function readTopology(src: YamlSource, nodes: readonly Node[], services: ReadonlySet<string>, appFile: string): Map<string, string> {
  const scope: Scope = new Scope(src, []);
  if (src.value === null || typeof src.value !== 'object' || Array.isArray(src.value)) {
    scope.fail([], 'a topology file is a mapping with "version: 1" and "nodes:"');
  }
  const spec = scope.shape([], Topology, src.value);
  const pins = new Map<string, string>();
  for (const [address, apps] of Object.entries(spec.nodes ?? {})) {
    const key = ['nodes', address];
    if (!Ipv4.safeParse(address).success) {
      scope.report(key, `node "${address}" is not an IPv4 address (a topology names nodes by address)`);
      continue;
    }
    const node = nodes.find((n) => n.host === address);
    if (node === undefined) {
      scope.report(key, `No known node with address "${address}"`);
      continue;
    }
    apps.forEach((app, i) => {
      if (!services.has(app)) scope.report([...key, i], `node "${address}": application "${app}" is not in ${appFile}`);
      else if (pins.has(app)) scope.report([...key, i], `node "${address}": application "${app}" appears more than once`);
      else pins.set(app, node.uuid);
    });
  }
  return pins;
}
