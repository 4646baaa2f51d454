/**
 * What each agent is pushed (`GET /v1/drover/agents/<uuid>/desired`, common/channel.ts
 * AgentDesired): the part of the desired configuration that concerns its node, so the cost
 * of a push does not grow with the cluster:
 * - every node (peers' transfer endpoints), and the node itself;
 * - the applications placed on it, and those of migrations to or from it;
 * - the datasets primary on it, mounted by those applications, carried by those migrations,
 *   those it is a replica of (docs/DESIGN.md §17: it keeps that copy read-only and never
 *   destroys it), or present on it (as the agent reported; so it sees a tombstone for its own
 *   copy, and a copy it no longer replicates stays in view, read-only);
 * - the leases on those datasets; the unfinished migrations that involve it.
 *
 * A view is rebuilt after each change and compared by entry identity with the last one;
 * only a node whose view changed gets a new version and has its long-polls answered.
 */
import type { DependencyState } from '#common/channel.ts';
import type { Application, Dataset, Desired, Lease, Migration, Node } from '#common/model.ts';
import { entryJson, listJson } from '../store/encode.ts';
import { indexOf } from '../desired/desired-index.ts';
import { nextVersion, Waiters } from './waiters.ts';
import { instanceApplication, isReplicated } from '../desired/instances.ts';

const replicated = new WeakMap<readonly Application[], Application[]>();
/** The applications that run as instances, once per applications array. */
function replicatedOf(applications: readonly Application[]): Application[] {
  let out = replicated.get(applications);
  if (out === undefined) {
    out = applications.filter(isReplicated);
    replicated.set(applications, out);
  }
  return out;
}

interface Parts {
  node: Node | null;
  nodes: readonly Node[];
  applications: Application[];
  datasets: Dataset[];
  leases: Lease[];
  migrations: Migration[];
  /** The states of what its applications depend on (docs/DESIGN.md §22), as JSON; '' when none. */
  dependencies: string;
}

interface View {
  version: number;
  parts: Parts;
  body: string | null;
  dirty: boolean;
  waiters: Waiters;
}

export class AgentViews {
  private readonly views = new Map<string, View>();
  private lastVersion = 0;
  private nodesJson: { of: readonly Node[]; text: string } | null = null;

  constructor(
    private readonly desired: () => Desired,
    private readonly presentOn: (node: string) => ReadonlySet<string> | undefined,
    /** How an application is doing across the cluster, for `depends_on` (observed state). */
    private readonly dependencyState: (application: string) => DependencyState = () => ({ started: false, healthy: false, completed: false }),
  ) {}

  /** The applications in the node's view now (placed on it, or in its migrations). */
  applicationsOf(node: string): readonly Application[] {
    return this.refreshOne(node).parts.applications;
  }

  /** The node's view now: its version and its JSON body. */
  get(node: string): { version: number; body: string } {
    const view = this.refreshOne(node);
    view.body ??= this.render(view);
    return { version: view.version, body: view.body };
  }

  /** Waits until the node's view is not at `after` (or the timeout, or the signal). */
  async wait(node: string, after: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const view = this.refreshOne(node);
    if (view.version !== after) return;
    await view.waiters.wait(timeoutMs, signal);
  }

  /**
   * After a change that touches `nodes` (all, by default): rebuilds those views that
   * someone waits on, and answers them if they changed; the others are rebuilt when read.
   */
  changed(nodes: Iterable<string> | 'all' = 'all'): void {
    const touched = nodes === 'all' ? this.views.keys() : nodes;
    for (const uuid of touched) {
      const view = this.views.get(uuid);
      if (!view) continue;
      view.dirty = true;
      if (view.waiters.size > 0) this.refreshOne(uuid);
    }
  }

  /** Ends every long-poll now (shutdown). */
  wakeAll(): void {
    for (const view of this.views.values()) view.waiters.wake();
  }

  private refreshOne(node: string): View {
    let view = this.views.get(node);
    if (!view) {
      this.lastVersion = nextVersion(this.lastVersion);
      view = { version: this.lastVersion, parts: this.parts(node), body: null, dirty: false, waiters: new Waiters() };
      this.views.set(node, view);
      return view;
    }
    if (!view.dirty) return view;
    view.dirty = false;
    const parts = this.parts(node);
    if (!sameParts(parts, view.parts)) {
      this.lastVersion = nextVersion(this.lastVersion);
      view.version = this.lastVersion;
      view.parts = parts;
      view.body = null;
      view.waiters.wake();
    }
    return view;
  }

  private parts(node: string): Parts {
    const desired = this.desired();
    const index = indexOf(desired);
    const migrations = [...(index.activeMigrations.byNode.get(node) ?? []), ...unsettledFailovers(desired.migrations, node)];
    const applications = [...(index.applicationsByNode.get(node) ?? [])];
    for (const m of migrations) {
      const app = m.application === null ? undefined : index.applications.get(m.application);
      if (app && !applications.includes(app)) applications.push(app);
    }
    // Instances (docs/DESIGN.md §30): each one on this node as an application of its own, `<app>.<id>`.
    for (const app of replicatedOf(desired.applications)) for (const i of app.placed ?? []) if (i.node_uuid === node) applications.push(instanceApplication(app, i));
    const datasets = [...(index.datasetsByPrimary.get(node) ?? [])];
    const ids = new Set(datasets.map((d) => d.dataset_id));
    const more = new Set<string>();
    for (const app of applications) for (const v of app.volumes) more.add(v.dataset_id);
    for (const m of migrations) for (const id of m.dataset_ids) more.add(id);
    for (const d of index.datasetsByReplica.get(node) ?? []) more.add(d.dataset_id);
    for (const id of this.presentOn(node) ?? []) more.add(id);
    for (const id of [...more].sort()) {
      const dataset = ids.has(id) ? undefined : index.datasets.get(id);
      if (dataset) {
        datasets.push(dataset);
        ids.add(id);
      }
    }
    const leases: Lease[] = [];
    for (const id of ids) {
      const lease = index.leases.get(id);
      if (lease) leases.push(lease);
    }
    const dependencies: Record<string, DependencyState> = {};
    for (const app of applications) for (const d of app.depends_on ?? []) dependencies[d.application] ??= this.dependencyState(d.application);
    const names = Object.keys(dependencies).sort();
    const dependenciesJson = names.length === 0 ? '' : JSON.stringify(Object.fromEntries(names.map((n) => [n, dependencies[n]])));
    return { node: index.nodes.get(node) ?? null, nodes: desired.nodes, applications, datasets, leases, migrations, dependencies: dependenciesJson };
  }

  private render(view: View): string {
    const { parts } = view;
    if (this.nodesJson?.of !== parts.nodes) this.nodesJson = { of: parts.nodes, text: listJson(parts.nodes) };
    return (
      `{"version":${view.version},"node":${parts.node === null ? 'null' : entryJson(parts.node)},"nodes":${this.nodesJson.text},` +
      `"datasets":${listJson(parts.datasets)},"applications":${listJson(parts.applications)},"leases":${listJson(parts.leases)},` +
      `"migrations":${listJson(parts.migrations)}${parts.dependencies === '' ? '' : `,"dependencies":${parts.dependencies}`}}`
    );
  }
}

function sameParts(a: Parts, b: Parts): boolean {
  return (
    a.node === b.node &&
    a.nodes === b.nodes &&
    a.dependencies === b.dependencies &&
    sameList(a.applications, b.applications) &&
    sameList(a.datasets, b.datasets) &&
    sameList(a.leases, b.leases) &&
    sameList(a.migrations, b.migrations)
  );
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Failover records (docs/DESIGN.md §18) a node must see: the chosen node until the application
 * ran there (its container carries the record's generation), the failed node until it kept its
 * copy (it learns it is stale, and the generation names the kept copy).
 */
function unsettledFailovers(migrations: readonly Migration[], node: string): Migration[] {
  return migrations.filter((m) => m.failover !== undefined && ((m.to === node && m.failover.ready_at === null) || (m.from === node && !m.failover.diverged.some((c) => c.node_uuid === node) && !m.failover.rejoined.some((c) => c.node_uuid === node))));
}
