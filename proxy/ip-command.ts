/**
 * The service subnet's route (docs/DESIGN.md §21), run through `ip` (execa, argument array):
 * `ip route replace local <subnet> dev lo` makes every address of the subnet this host's own
 * (Linux "AnyIP"), so the proxy can listen on any of them and a container's connection to one
 * — out of its bridge, to its gateway, the host — is delivered here. One route per proxy,
 * whatever the number of applications; replaced at start (idempotent) and deleted at stop.
 * A subnet inside 127.0.0.0/8 is local already and needs none (tests). Needs CAP_NET_ADMIN.
 */
import { execa } from 'execa';
import { DroverError } from '#common/errors.ts';
import type { ServiceSubnet } from '#common/service-subnet.ts';

export interface LocalRoute {
  /** Makes the subnet local. @throws DROVER_LOCAL_ROUTE_FAILED */
  add(): Promise<void>;
  /** Removes it; gone already is fine. */
  remove(): Promise<void>;
}

export function localRoute(subnet: ServiceSubnet, ip = 'ip'): LocalRoute {
  const loopback = subnet.base >>> 24 === 127;
  const run = async (verb: 'replace' | 'del'): Promise<void> => {
    if (loopback) return;
    const result = await execa(ip, ['route', verb, 'local', subnet.cidr, 'dev', 'lo'], { reject: false, timeout: 10_000 });
    if (result.exitCode === 0) return;
    const stderr = (result.stderr || result.shortMessage || '').trim();
    if (verb === 'del' && /No such process|not found/i.test(stderr)) return;
    throw new DroverError('DROVER_LOCAL_ROUTE_FAILED', `ip route ${verb} local ${subnet.cidr} dev lo failed: ${stderr}`, { retryable: false, detail: { subnet: subnet.cidr } });
  };
  return { add: () => run('replace'), remove: () => run('del') };
}
