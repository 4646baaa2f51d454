import { z } from 'zod';
import { AppName } from '#common/model.ts';
import { readComposeService } from './compose-service.ts';
import { readTopVolumes } from './compose-volumes.ts';
import type { FileDraft, ServiceDraft } from './draft.ts';
import { unescapeDollars } from './interpolation.ts';
import { Scope } from './scope.ts';
import type { YamlSource } from './yaml-source.ts';

const TOP_REASONS: Record<string, string> = {
  networks: 'drover connects applications through its routing proxy; use "ports:" and "links:"',
  configs: 'not supported; put the file in the image or in a volume',
  secrets: 'not supported; put the value in the image or in a volume',
};

/** A Compose file: `services:`, optional `version:` (informational), `name:`, `volumes:`, `x-*`. */
const ComposeTop = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, "_" or "-"').optional(),
    services: z.record(z.string(), z.unknown()),
    volumes: z.unknown().optional(),
  })
  .catchall(z.unknown());

/**
 * Reads a Compose file (`services:` at the top). Top-level `x-*` keys are allowed and not
 * read (they exist to hold YAML anchors); any other unknown top-level key is refused.
 */
export function readComposeFile(src: YamlSource, top: Record<string, unknown>): FileDraft {
  const scope = new Scope(src, []);
  for (const key of Object.keys(top)) {
    if (key.startsWith('x-') || ['version', 'name', 'services', 'volumes'].includes(key)) continue;
    const reason = TOP_REASONS[key];
    scope.fail([key], `unsupported top-level key "${key}"${reason ? `: ${reason}` : ''}`);
  }
  const spec = scope.shape([], ComposeTop, top);
  const volumes = readTopVolumes(scope, unescapeDollars(scope, spec.volumes ?? null, ['volumes']));
  const services = readServices(src, ['services'], spec.services);
  if (services.length === 0) scope.failKey(['services'], 'declares no service');
  const draft: FileDraft = { services, volumes, volumesMustBeDeclared: true };
  if (spec.name !== undefined) draft.name = spec.name;
  return draft;
}

/**
 * Reads a Fig (Compose v1) file: the services are the top-level keys. It is recognised when
 * a top-level entry is a mapping with `image` or `build` (Flocker's rule). Named volumes need
 * no declaration there, as in Compose v1.
 */
export function readFigFile(src: YamlSource, top: Record<string, unknown>): FileDraft {
  return { services: readServices(src, [], top), volumes: new Map(), volumesMustBeDeclared: false };
}

export function looksLikeFig(top: Record<string, unknown>): boolean {
  return Object.values(top).some((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && ('image' in v || 'build' in v));
}

function readServices(src: YamlSource, base: PropertyKey[], record: Record<string, unknown>): ServiceDraft[] {
  return Object.entries(record).map(([name, raw]) => {
    const scope = new Scope(src, [...base, name], name);
    if (!AppName.safeParse(name).success) {
      scope.fail([], `"${name}" is not a service name drover can use (a letter or digit, then letters, digits, "_", "." or "-"; at most 63)`);
    }
    return readComposeService(scope, name, unescapeDollars(scope, raw));
  });
}
