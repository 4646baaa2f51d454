import type { z } from 'zod';
import { Application, Dataset, externalKey, type Link } from '#common/model.ts';
import { datasetIdFor } from '#common/dataset-id.ts';
import type { FileDraft, ServiceDraft } from './draft.ts';
import { UNPLACED_PRIMARY } from '#common/model.ts';
import type { Parsed } from './index.ts';

/**
 * Turns the drafts of one application file into drover's model: one dataset per volume
 * (its id derived from project and volume name), links resolved from the linked service's
 * ports, topology pins applied. Everything is validated whole against the model's schemas.
 * Pure; throws `DROVER_BAD_CONFIG` naming the file, the service and the key.
 */
export function buildModel(draft: FileDraft, project: string, pins: ReadonlyMap<string, string>): Parsed {
  const byName = new Map(draft.services.map((s) => [s.name, s]));
  const volumeOwner = new Map<string, string>();
  const datasets: Dataset[] = [];
  const datasetOf = new Map<string, string>();

  for (const service of draft.services) {
    for (const use of service.volumes) {
      service.scope.attempt(() => readUse(service, use), undefined);
    }
  }
  function readUse(service: ServiceDraft, use: ServiceDraft['volumes'][number]): void {
    {
      const declared = draft.volumes.get(use.volume);
      if (use.anonymous && declared !== undefined) {
        service.scope.failKey(use.key, `the anonymous volume would be named "${use.volume}", like a declared volume; name it`);
      }
      if (!use.anonymous && declared === undefined && draft.volumesMustBeDeclared) {
        service.scope.failKey(use.key, `volume "${use.volume}" is not declared under the top-level "volumes:"`);
      }
      const owner = volumeOwner.get(use.volume);
      if (owner !== undefined) {
        service.scope.failKey(use.key, `volume "${use.volume}" is already mounted by service "${owner}"; a dataset belongs to one application and moves with it`);
      }
      volumeOwner.set(use.volume, service.name);
      const node = pins.get(service.name);
      const datasetId = declared?.dataset_id ?? datasetIdFor(project, use.volume);
      if (datasets.some((d) => d.dataset_id === datasetId)) service.scope.failKey(use.key, `dataset ${datasetId} is used twice`);
      datasetOf.set(use.volume, datasetId);
      datasets.push(
        Dataset.parse({
          dataset_id: datasetId,
          primary: node ?? UNPLACED_PRIMARY,
          maximum_size: declared?.maximum_size ?? null,
          metadata: { name: `${project}_${use.volume}`, project },
        }),
      );
    }
  }
  for (const name of draft.volumes.keys()) {
    // A volume of a service left out by its profile is not unused.
    if (!volumeOwner.has(name) && draft.inactive.size === 0 && draft.services.length > 0) {
      draft.services[0]!.scope.src.report(['volumes', name], `volume "${name}" is declared but no service mounts it`);
    }
  }
  const containerNames = new Map<string, string>();
  for (const service of draft.services) {
    const name = service.runtime.container_name;
    if (name === undefined) continue;
    const other = containerNames.get(name);
    if (other !== undefined) service.scope.reportKey(['container_name'], `"${name}" is also the container_name of service "${other}"`);
    containerNames.set(name, service.name);
  }

  const externals = new Map<string, string>();
  const applications = draft.services.map((service) => service.scope.attempt(() => {
    for (const port of service.ports) {
      const other = externals.get(externalKey(port));
      if (other !== undefined) service.scope.reportKey(['ports'], `published port ${externalKey(port)} is also published by service "${other}"`);
      externals.set(externalKey(port), service.name);
    }
    const node = pins.get(service.name);
    const candidate = {
      name: service.name,
      ...(node === undefined ? {} : { node_uuid: node, pinned_node_uuid: node }),
      image: service.image,
      ...(service.command_line === undefined ? {} : { command_line: service.command_line }),
      ...(service.entrypoint === undefined ? {} : { entrypoint: service.entrypoint }),
      environment: service.environment,
      ports: service.ports,
      ...(service.expose === undefined || service.expose.length === 0 ? {} : { expose: service.expose }),
      ...(service.networks === undefined ? {} : { networks: service.networks }),
      volumes: service.volumes
        .filter((u) => datasetOf.has(u.volume))
        .map((u) => ({ dataset_id: datasetOf.get(u.volume)!, mountpoint: u.mountpoint, ...(u.readOnly ? { read_only: true } : {}) })),
      links: resolveLinks(service, byName, draft.inactive),
      restart_policy: service.restart_policy,
      ...(service.cpu_shares === undefined ? {} : { cpu_shares: service.cpu_shares }),
      ...(service.memory_limit === undefined ? {} : { memory_limit: service.memory_limit }),
      ...(service.swappiness === undefined ? {} : { swappiness: service.swappiness }),
      ...(service.health_check === undefined ? {} : { health_check: service.health_check }),
      ...(service.placement === undefined ? {} : { placement: service.placement }),
      ...(service.replication === undefined ? {} : { replication: service.replication }),
      ...(service.move === undefined ? {} : { move: service.move }),
      ...(service.instances === undefined ? {} : { instances: service.instances }),
      ...(service.mode === undefined ? {} : { mode: service.mode }),
      ...(service.update_config === undefined ? {} : { update_config: service.update_config }),
      labels: service.labels,
      ...service.runtime,
      ...(service.files.length === 0 ? {} : { files: service.files }),
      ...(service.secret_environment === undefined ? {} : { secret_environment: service.secret_environment }),
      ...dependsOn(service, byName),
      project,
    };
    if (service.incomplete) return null;
    const result = Application.safeParse(candidate);
    if (!result.success) {
      for (const issue of result.error.issues) service.scope.reportKey(issue.path, issue.message);
      return null;
    }
    return result.data;
  }, null));
  const parsed: Parsed = { applications: applications.filter((a): a is Application => a !== null), datasets };
  if (draft.contents !== undefined && draft.contents.size > 0) parsed.contents = draft.contents;
  return parsed;
}

/**
 * `depends_on` → the application's start-up conditions (docs/DESIGN.md §22). `service_healthy`
 * needs a health check on the other service (Compose refuses it too); a service that restarts
 * always never completes, so `service_completed_successfully` on it would wait for ever.
 */
function dependsOn(service: ServiceDraft, byName: ReadonlyMap<string, ServiceDraft>): { depends_on?: { application: string; condition: NonNullable<ServiceDraft['linkTargets'][number]['condition']> }[] } {
  const out: { application: string; condition: NonNullable<ServiceDraft['linkTargets'][number]['condition']> }[] = [];
  for (const target of service.linkTargets) {
    if (target.condition === undefined) continue;
    const other = byName.get(target.service);
    if (other === undefined || other === service) continue; // resolveLinks says why
    // A service with problems of its own is not judged again (no follow-on noise).
    const at = target.key[0] === 'depends_on' && typeof target.key[1] === 'string' ? [...target.key, 'condition'] : target.key;
    if (target.condition === 'service_healthy' && other.health_check === undefined && !other.incomplete) {
      service.scope.reportKey(at, `"service_healthy" needs a health check on service "${target.service}" ("healthcheck:" or "x-drover-healthcheck:"); it has none`);
      continue;
    }
    if (target.condition === 'service_completed_successfully' && other.restart_policy.name === 'always') {
      service.scope.reportKey(at, `service "${target.service}" restarts always, so it never completes; give it "restart: no" or "on-failure", or use "service_started"`);
      continue;
    }
    out.push({ application: target.service, condition: target.condition });
  }
  return out.length === 0 ? {} : { depends_on: out };
}

/**
 * Compose links become Flocker links, one per port of the linked service: the local port is
 * the linked container's port, the remote port the one drover publishes (Flocker's rule).
 */
function resolveLinks(service: ServiceDraft, byName: ReadonlyMap<string, ServiceDraft>, inactive: ReadonlySet<string>): z.infer<typeof Link>[] {
  const links: z.infer<typeof Link>[] = [...service.links];
  for (const target of service.linkTargets) {
    const other = byName.get(target.service);
    if (target.service === service.name) {
      service.scope.reportKey(target.key, 'a service cannot link to itself');
      continue;
    }
    if (other === undefined) {
      if (target.optional) continue;
      const why = inactive.has(target.service) ? `service "${target.service}" is not active (its profiles are not enabled; add --profile)` : `service "${target.service}" is not in this file`;
      service.scope.reportKey(target.key, why);
      continue;
    }
    // Links are TCP (Docker's link variables); UDP ports are reached by name.
    for (const port of other.ports.filter((p) => p.protocol !== 'udp')) links.push({ alias: target.alias, local_port: port.internal, remote_port: port.external });
  }
  const seen = new Set<number>();
  links.forEach((link) => {
    if (seen.has(link.local_port)) service.scope.failKey(['links'], `two links use local port ${link.local_port}`);
    seen.add(link.local_port);
  });
  return links;
}
