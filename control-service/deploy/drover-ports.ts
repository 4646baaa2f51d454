/**
 * The TCP ports drover's own processes listen on, on a node's address, that an application
 * may not publish (docs/DESIGN.md §27): every node's proxy listens on each published port
 * at its node's address, so a published port drover already uses there makes either the
 * proxy or drover's process fail to bind — the agent's logs endpoint on 4526 was the case met.
 * Pure.
 *
 * The ports: drover's defaults (control API 4523, the agents' TLS receive 4524 as the local
 * cluster sets it, the agents' logs 4526, `/metrics` 9523–9526), and what each node reports it
 * uses (its logs port, its TLS receive port, its sshd's port when sshd listens on the node's
 * address). A default is kept even when no node reports it: an agent whose port was taken
 * reports none.
 */
import { DroverError } from '#common/errors.ts';
import { METRICS_PORTS } from '#common/metrics-listener.ts';
import type { Application, NodeReport } from '#common/model.ts';

/** A port drover's own processes use, and which process. */
export interface DroverPort {
  port: number;
  usedBy: string;
}

/** drover's default ports, whatever the nodes report. */
export const DEFAULT_DROVER_PORTS: readonly DroverPort[] = [
  { port: 4523, usedBy: 'the control service\'s API' },
  { port: 4524, usedBy: 'the agents\' TLS receive endpoint' },
  { port: 4526, usedBy: 'the agents\' logs endpoint' },
  { port: METRICS_PORTS.control, usedBy: 'the control service\'s /metrics' },
  { port: METRICS_PORTS.agent, usedBy: 'the agents\' /metrics' },
  { port: METRICS_PORTS.proxy, usedBy: 'the proxies\' /metrics' },
  { port: METRICS_PORTS.plugin, usedBy: 'the volume plugins\' /metrics' },
];

type Reported = Pick<NodeReport, 'host' | 'logs' | 'transfer' | 'labels'>;

/** drover's defaults and the ports the nodes report using on their addresses; one entry per port. Pure. */
export function droverPorts(reports: Iterable<Reported>): DroverPort[] {
  const out = new Map<number, string>(DEFAULT_DROVER_PORTS.map((p) => [p.port, p.usedBy]));
  for (const r of reports) {
    const node = r.labels.name === undefined ? r.host : `${r.labels.name} (${r.host})`;
    const add = (port: number | undefined, what: string) => {
      if (port !== undefined && !out.has(port)) out.set(port, `${what} on node ${node}`);
    };
    add(r.logs?.port, 'the agent\'s logs endpoint');
    add(r.transfer.tls?.port, 'the agent\'s TLS receive endpoint');
    if (r.transfer.ssh?.host === r.host) add(r.transfer.ssh.port, 'sshd (the ssh transport)');
  }
  return [...out].map(([port, usedBy]) => ({ port, usedBy })).sort((a, b) => a.port - b.port);
}

/**
 * Refuses applications that publish a TCP port drover uses (`DROVER_CONFLICT`), naming every
 * service, its `ports` and what uses the port, all at once. UDP ports are not checked:
 * drover listens on none. Pure.
 */
export function checkDroverPorts(applications: readonly Application[], used: readonly DroverPort[]): void {
  const byPort = new Map(used.map((p) => [p.port, p.usedBy]));
  const problems: { service: string; field: string; port: number; used_by: string }[] = [];
  for (const app of applications) {
    for (const p of app.ports) {
      const usedBy = p.protocol === 'udp' ? undefined : byPort.get(p.external);
      if (usedBy !== undefined) problems.push({ service: app.name, field: `services.${app.name}.ports`, port: p.external, used_by: usedBy });
    }
  }
  if (problems.length === 0) return;
  const lines = problems.map((p) => `service "${p.service}": ports: published port ${p.port} is used by drover itself (${p.used_by}); publish another port`);
  throw new DroverError('DROVER_CONFLICT', lines.join('; '), { detail: { problems } });
}
