import type { z } from 'zod';
import { Application, Dataset, type Link } from '#common/model.ts';
import { keyPath } from './config-error.ts';
import { datasetIdFor } from '#common/dataset-id.ts';
import type { FileDraft, ServiceDraft } from './draft.ts';
import { UNPLACED_PRIMARY, type Parsed } from './index.ts';

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
    if (!volumeOwner.has(name)) {
      const scope = draft.services[0]!.scope;
      scope.src.fail(['volumes', name], `volume "${name}" is declared but no service mounts it`);
    }
  }

  const externals = new Map<number, string>();
  const applications = draft.services.map((service) => {
    for (const port of service.ports) {
      const other = externals.get(port.external);
      if (other !== undefined) service.scope.failKey(['ports'], `published port ${port.external} is also published by service "${other}"`);
      externals.set(port.external, service.name);
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
      volumes: service.volumes.map((u) => ({ dataset_id: datasetOf.get(u.volume)!, mountpoint: u.mountpoint })),
      links: resolveLinks(service, byName),
      restart_policy: service.restart_policy,
      ...(service.cpu_shares === undefined ? {} : { cpu_shares: service.cpu_shares }),
      ...(service.memory_limit === undefined ? {} : { memory_limit: service.memory_limit }),
      ...(service.health_check === undefined ? {} : { health_check: service.health_check }),
      ...(service.placement === undefined ? {} : { placement: service.placement }),
      ...(service.replication === undefined ? {} : { replication: service.replication }),
      labels: service.labels,
      project,
    };
    const result = Application.safeParse(candidate);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return service.scope.failKey(issue.path, issue.message, result.error.issues.map((i) => ({ path: keyPath(i.path), message: i.message })));
    }
    return result.data;
  });
  return { applications, datasets };
}

/**
 * Compose links become Flocker links, one per port of the linked service: the local port is
 * the linked container's port, the remote port the one drover publishes (Flocker's rule).
 */
function resolveLinks(service: ServiceDraft, byName: ReadonlyMap<string, ServiceDraft>): z.infer<typeof Link>[] {
  const links: z.infer<typeof Link>[] = [...service.links];
  for (const target of service.linkTargets) {
    const other = byName.get(target.service);
    if (target.service === service.name) service.scope.failKey(target.key, 'a service cannot link to itself');
    if (other === undefined) {
      if (target.optional) continue;
      service.scope.failKey(target.key, `service "${target.service}" is not in this file`);
    }
    for (const port of other.ports) links.push({ alias: target.alias, local_port: port.internal, remote_port: port.external });
  }
  const seen = new Set<number>();
  links.forEach((link) => {
    if (seen.has(link.local_port)) service.scope.failKey(['links'], `two links use local port ${link.local_port}`);
    seen.add(link.local_port);
  });
  return links;
}
