/**
 * Service discovery by name, decided at deploy (docs/DESIGN.md §21). Pure.
 *
 * Every application of a deployed project gets a **name slot**, unique in the cluster and kept
 * for the application's life: its address on every node is the node's service subnet + slot,
 * where the node's proxy listens on the application's container ports. Each application's
 * **peers** are the names its container resolves — the service names (and network aliases) of
 * the project's applications that share a Compose network with it, itself included — each
 * mapped to that application's slot. Two projects that both have `db` give it two slots, and
 * each project's containers resolve only their own `db`.
 */
import { DroverError } from '#common/errors.ts';
import { MAX_NAME_SLOT, type Application } from '#common/model.ts';

const DEFAULT_NETWORKS: Readonly<Record<string, string[]>> = { default: [] };

/**
 * Gives `apps` (one project's, after placement) their name slots and peers. A slot an
 * application had (`old`) is kept; a new one takes the lowest slot no other application of
 * the cluster (`others`) or of the project holds.
 *
 * @throws DroverError `DROVER_CONFLICT` when the cluster has no free slot left.
 */
export function assignNames(apps: readonly Application[], old: ReadonlyMap<string, Application>, others: readonly Application[]): Application[] {
  const taken = new Set<number>();
  for (const a of others) if (a.name_slot !== undefined) taken.add(a.name_slot);
  const slots = new Map<string, number>();
  for (const app of apps) {
    const kept = old.get(app.name)?.name_slot;
    if (kept !== undefined && !taken.has(kept)) {
      slots.set(app.name, kept);
      taken.add(kept);
    }
  }
  let next = 1;
  for (const app of apps) {
    if (slots.has(app.name)) continue;
    while (taken.has(next)) next++;
    if (next > MAX_NAME_SLOT) {
      throw new DroverError('DROVER_CONFLICT', `no name slot is left for application "${app.name}": the cluster has ${MAX_NAME_SLOT} applications reached by name`, { detail: { application: app.name } });
    }
    slots.set(app.name, next);
    taken.add(next);
  }
  return apps.map((app) => {
    const mine = app.networks ?? DEFAULT_NETWORKS;
    const peers: Record<string, number> = {};
    // Service names first (a service's name wins over another's alias), then aliases, both in file order.
    for (const other of apps) if (shares(mine, other.networks ?? DEFAULT_NETWORKS)) peers[other.name] = slots.get(other.name)!;
    for (const other of apps) {
      for (const [network, aliases] of Object.entries(other.networks ?? DEFAULT_NETWORKS)) {
        if (mine[network] === undefined) continue;
        for (const alias of aliases) if (!(alias in peers)) peers[alias] = slots.get(other.name)!;
      }
    }
    return { ...app, name_slot: slots.get(app.name)!, peers };
  });
}

function shares(a: Readonly<Record<string, string[]>>, b: Readonly<Record<string, string[]>>): boolean {
  return Object.keys(a).some((n) => b[n] !== undefined);
}
