/**
 * Deploy: from a Compose (or Flocker application) file plus a topology file to desired
 * configuration. Everything here is pure: no I/O, no clock, no logging. The control
 * service calls these from `POST /v1/drover/deploy`; the CLI calls `projectNameOf`.
 *
 * Start reading at `parseDeployment` (parse-deployment.ts), then `planDeploy` (plan-deploy.ts).
 */
import type { Application, Dataset, Desired, Node } from '#common/model.ts';

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
}

export interface Parsed {
  applications: Application[];
  datasets: Dataset[];
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
