/**
 * A node's service subnet (docs/DESIGN.md §21): the IPv4 range whose addresses stand for the
 * applications a container reaches by name. Application `name_slot` N is `base + N` on every
 * node; the node's proxy listens there (the range is routed to the host itself), and the
 * agent writes `name → that address` into each container's /etc/hosts. Pure.
 */
import { z } from 'zod';

export const DEFAULT_SERVICE_SUBNET = '10.213.0.0/16';

export interface ServiceSubnet {
  /** The CIDR as written, normalised (`10.213.0.0/16`). */
  cidr: string;
  /** The network address as a 32-bit unsigned integer. */
  base: number;
  /** Usable slots: 1 … size − 2 (the network and broadcast addresses are left out). */
  slots: number;
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Parses `a.b.c.d/len` (len 16–30, host bits zero); null when it is not one. */
export function parseServiceSubnet(text: string): ServiceSubnet | null {
  const m = CIDR.exec(text);
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  const len = Number(m[5]);
  if (octets.some((o) => o > 255) || len < 16 || len > 30) return null;
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const size = 2 ** (32 - len);
  if (base % size !== 0) return null;
  return { cidr: `${octets.join('.')}/${len}`, base, slots: size - 2 };
}

/** A config value: a service subnet, `a.b.c.d/16` to `/30`, host bits zero. */
export const ServiceSubnetText = z
  .string()
  .refine((t) => parseServiceSubnet(t) !== null, 'must be an IPv4 subnet a.b.c.d/16 to /30 with its host bits zero (e.g. 10.213.0.0/16)');

/** The address of `slot` in `subnet`, or null when the subnet is too small for it. */
export function serviceAddress(subnet: ServiceSubnet, slot: number): string | null {
  if (!Number.isInteger(slot) || slot < 1 || slot > subnet.slots) return null;
  const n = subnet.base + slot;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
