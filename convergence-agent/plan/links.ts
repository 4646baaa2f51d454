/**
 * Environment variables for application links (Flocker's `_link_environment`, Docker link
 * style). A link names another application by the port it publishes (`remote_port`, that
 * application's external port); every node's proxy listens on every external port, so the
 * variables point at the consumer's own node proxy, which follows the linked application
 * wherever it runs.
 */
import type { z } from 'zod';
import type { Application, Link } from '#common/model.ts';

export type LinkSpec = z.infer<typeof Link>;

/**
 * The link variables of `app`, pointing at `proxyAddress` (the node's proxy address):
 *
 * - `<ALIAS>_PORT_<local>_TCP=tcp://<proxy>:<remote>`, `…_TCP_ADDR`, `…_TCP_PORT`, `…_TCP_PROTO`
 *   for every link, as Docker and Flocker named them;
 * - plain `<ALIAS>_HOST=<proxy>` and `<ALIAS>_PORT=<remote>` from the alias's first link (in
 *   list order), for programs that want a host and a port.
 *
 * Aliases are upper-cased. A name that `app.environment` sets already is left out: the
 * operator's value wins. Pure; the result's keys are sorted so it compares by equality.
 */
export function linkEnvironment(
  app: Pick<Application, 'environment'>,
  links: readonly LinkSpec[],
  proxyAddress: string,
): Record<string, string> {
  const vars = new Map<string, string>();
  const plainTaken = new Set<string>();
  for (const link of links) {
    const alias = link.alias.toUpperCase();
    const base = `${alias}_PORT_${link.local_port}_TCP`;
    const remote = String(link.remote_port);
    vars.set(base, `tcp://${proxyAddress}:${remote}`);
    vars.set(`${base}_ADDR`, proxyAddress);
    vars.set(`${base}_PORT`, remote);
    vars.set(`${base}_PROTO`, 'tcp');
    if (!plainTaken.has(alias)) {
      plainTaken.add(alias);
      vars.set(`${alias}_HOST`, proxyAddress);
      vars.set(`${alias}_PORT`, remote);
    }
  }
  const out: Record<string, string> = {};
  for (const name of [...vars.keys()].sort()) {
    if (Object.hasOwn(app.environment, name)) continue;
    out[name] = vars.get(name)!;
  }
  return out;
}
