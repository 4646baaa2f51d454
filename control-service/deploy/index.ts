/**
 * Deploy: from a Compose (or Flocker application) file plus a topology file to desired
 * configuration. Everything here is pure: no I/O, no clock, no logging. The control
 * service calls these from `POST /v1/drover/deploy`; the CLI calls `projectNameOf`.
 *
 * Start reading at `parseDeployment` (parse-deployment.ts), then `planDeploy` (plan-deploy.ts).
 */
import type { Application, Dataset, Desired, Node } from '#common/model.ts';
import type { DeployContent } from './compose-files.ts';

export type { DeployContent } from './compose-files.ts';

export interface DeployFile {
  /** The name shown in error messages, e.g. `compose.yml`. */
  file: string;
  text: string;
}

export interface ParseDeploymentInput {
  project: string;
  compose: DeployFile;
  topology: DeployFile;
  /** The known nodes; the topology may only name these (by IPv4 address). */
  nodes: Node[];
  /**
   * The contents uploaded with the deploy (by SHA-256) and the control service's id of a
   * secret's content (docs/DESIGN.md §22). Absent: files and secrets cannot be read.
   */
  files?: { uploads: ReadonlyMap<string, Uint8Array>; secretIdOf: (bytes: Uint8Array) => string };
}

export interface Parsed {
  applications: Application[];
  datasets: Dataset[];
  /** File contents the applications refer to, by id, for the vault (absent: none). */
  contents?: ReadonlyMap<string, DeployContent>;
}

export interface DeployDiff {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
}

export { UNPLACED_PRIMARY } from '#common/model.ts';

export { parseDeployment } from './parse-deployment.ts';
export { planDeploy } from './plan-deploy.ts';
export { projectNameOf } from '#common/project-name.ts';
