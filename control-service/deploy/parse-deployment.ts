import { buildModel } from './build-model.ts';
import { badConfigAll, ConfigAbort, type ConfigProblem } from './config-error.ts';
import { looksLikeFig, readComposeFile, readFigFile } from './compose-file.ts';
import type { FileDraft } from './draft.ts';
import { readFlockerFile } from './flocker-file.ts';
import type { DeployFile, ParseDeploymentInput, Parsed } from './index.ts';
import { Scope } from './scope.ts';
import { readTopology } from './topology.ts';
import { YamlSource } from './yaml-source.ts';

const PROJECT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Parses the application file (Flocker native, Fig, or Compose) and the topology file into
 * drover applications and datasets, all stamped with `project`. Pure: no I/O, no clock.
 *
 * Applications the topology names get `node_uuid` (and `pinned_node_uuid`) and their
 * datasets that node as primary; the others have no `node_uuid` and their datasets have
 * `UNPLACED_PRIMARY` until the scheduler places them. `planDeploy` then keeps placements
 * that already exist.
 *
 * @throws DroverError `DROVER_BAD_CONFIG` listing every problem of both files, each naming
 *   the file (with line and column), the service and the key — `compose.yml:9:5: service
 *   "web": unsupported key "privileged"`. One problem: that line is the message, detail
 *   `{ file, service?, key?, line?, column?, issues? }`. Several: a count, then a line each;
 *   detail adds `problems: [{ file, line?, column?, service?, key?, message }]`.
 */
export function parseDeployment(input: ParseDeploymentInput): Parsed {
  // Every reader records its problems here and goes on, so a refusal lists them all.
  const problems: ConfigProblem[] = [];
  if (!PROJECT.test(input.project)) {
    problems.push({ place: { file: input.compose.file }, what: `project "${input.project}" must be lower-case letters, digits, "_" or "-" (at most 63)` });
  }
  const app = readSource(input.compose, problems);
  const appScope = app && new Scope(app, []);
  const draft = appScope ? appScope.attempt(() => readApplicationFile(app!, appScope, input), null) : null;
  const topology = readSource(input.topology, problems);
  const names = new Set(draft?.services.map((s) => s.name) ?? []);
  const pins = topology ? new Scope(topology, []).attempt(() => readTopology(topology, input.nodes, names, input.compose.file), new Map<string, string>()) : new Map<string, string>();
  const parsed = draft === null || appScope === null ? null : appScope.attempt(() => buildModel(draft, input.project, pins), null);
  if (problems.length > 0 || parsed === null) throw badConfigAll(problems);
  return parsed;
}

/** The parsed file, or null when it is not YAML (or too large): its problem is recorded. */
function readSource(file: DeployFile, problems: ConfigProblem[]): YamlSource | null {
  try {
    return new YamlSource(file, problems);
  } catch (err) {
    if (err instanceof ConfigAbort) return null;
    throw err;
  }
}

function readApplicationFile(src: YamlSource, scope: Scope, input: ParseDeploymentInput): FileDraft {
  const top = src.value;
  if (top === null || typeof top !== 'object' || Array.isArray(top)) {
    return scope.fail([], 'an application file is a mapping: Compose ("services:"), Flocker ("version: 1" and "applications:") or Fig (services at the top)');
  }
  const record = top as Record<string, unknown>;
  if ('applications' in record) return readFlockerFile(src, record);
  if ('services' in record) return readComposeFile(src, record, input.files);
  if (looksLikeFig(record)) return readFigFile(src, record);
  return scope.fail(
    [],
    'not an application file drover reads: expected Compose ("services:"), Flocker ("version: 1" and "applications:") or Fig (services with "image:" at the top)',
  );
}
