import { createHash } from 'node:crypto';
import { DroverError } from '#common/errors.ts';
import { run } from './run.ts';

/** The Linux bridge behind a node's dockerd (`dockerd -b`), created and deleted by the harness. */

/** The links of the root network namespace, or of the named one (`ip -n <netns>`). */
export async function listLinks(netns?: string): Promise<string[]> {
  const { stdout } = await run('ip', [...inNs(netns), '-j', 'link', 'show'], { timeoutMs: 15_000 });
  const links = JSON.parse(stdout || '[]') as Array<{ ifname: string }>;
  return links.map((link) => link.ifname);
}

/** The networks routed on this machine, as `{ dev, dst }` (dst like '172.17.0.0/16'). */
async function routes(): Promise<Array<{ dev: string; dst: string }>> {
  const { stdout } = await run('ip', ['-j', 'route', 'show'], { timeoutMs: 15_000 });
  return (JSON.parse(stdout || '[]') as Array<{ dev?: string; dst?: string }>).map((r) => ({
    dev: r.dev ?? '',
    dst: r.dst ?? '',
  }));
}

function inNs(netns: string | undefined): string[] {
  return netns === undefined ? [] : ['-n', netns];
}

function toInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** True when two IPv4 CIDRs share an address. Pure. */
export function overlaps(a: string, b: string): boolean {
  const range = (cidr: string): [number, number] => {
    const [ip = '0.0.0.0', bitsText] = cidr.split('/');
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    const size = 2 ** (32 - bits);
    const start = Math.floor(toInt(ip) / size) * size;
    return [start, start + size - 1];
  };
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
}

/** @throws DROVER_CLUSTER_BRIDGE_CLASH when `network` overlaps a network routed on this machine through another link than `name`. */
export async function checkNoClash(name: string, network: string): Promise<void> {
  const clash = (await routes()).find((r) => r.dev !== name && r.dst !== 'default' && r.dst.includes('.') && overlaps(r.dst, network));
  if (clash) {
    throw new DroverError('DROVER_CLUSTER_BRIDGE_CLASH', `bridge network ${network} for ${name} overlaps ${clash.dst} on ${clash.dev}`, {
      detail: { bridge: name, network, route: clash },
    });
  }
}

/**
 * Creates a bridge with its address, in the root network namespace or in `netns` (an
 * isolated node's docker bridge; a namespace has only its own routes, so no clash check).
 */
export async function createBridge(name: string, cidr: string, network: string, netns?: string): Promise<void> {
  if (netns === undefined) await checkNoClash(name, network);
  await run('ip', [...inNs(netns), 'link', 'add', name, 'type', 'bridge'], { timeoutMs: 15_000 });
  await run('ip', [...inNs(netns), 'link', 'set', name, 'address', bridgeMac(name)], { timeoutMs: 15_000 });
  await run('ip', [...inNs(netns), 'addr', 'add', cidr, 'dev', name], { timeoutMs: 15_000 });
  await run('ip', [...inNs(netns), 'link', 'set', name, 'up'], { timeoutMs: 15_000 });
}

/**
 * The bridge's own MAC address, set once at creation: locally administered, unicast, from a
 * hash of its name. A Linux bridge whose address was never set takes the lowest of its ports'
 * addresses, so it changed whenever a container's veth came or went — and every other container
 * of the node kept the old one cached for its gateway: what it sent to the host (a proxy's
 * relay, docker-proxy) was dropped until its ARP entry went stale, tens of seconds plus TCP's
 * retransmission backoff (docs/DESIGN.md §35). Docker pins the address of bridges it creates;
 * `dockerd -b` takes ours as it is. Pure.
 */
export function bridgeMac(name: string): string {
  const bytes = [...createHash('sha256').update(name).digest().subarray(0, 6)];
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export async function deleteBridge(name: string): Promise<void> {
  if (!(await listLinks()).includes(name)) return;
  await run('ip', ['link', 'del', name], { timeoutMs: 15_000 });
}
