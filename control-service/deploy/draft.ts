import type { z } from 'zod';
import type { UpdateConfig } from '#common/model.ts';
import type { AppFile, Application, Dependency, HealthCheck, Link, MovePolicy, Placement, ReplicationPolicy, RestartPolicy } from '#common/model.ts';
import type { DeployContent } from './compose-files.ts';
import type { Scope } from './scope.ts';
import type { Exposed, Mapping } from './compose-ports.ts';

/**
 * What each application-file format (Compose, Fig, Flocker) reads a service into, before
 * links are resolved and volumes become datasets (build-model.ts). Plain data.
 */
export interface ServiceDraft {
  name: string;
  /** For errors found later (a link to an unknown service, a shared volume). */
  scope: Scope;
  image: string;
  command_line?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  ports: Mapping[];
  /** Compose `expose:`: reached by name only (docs/DESIGN.md §21). */
  expose?: Exposed[];
  /** Compose `networks:` → aliases; absent: the project's `default` network. */
  networks?: Record<string, string[]>;
  volumes: VolumeUse[];
  /** Compose `links`/`depends_on`: resolved into `links` from the target's ports. */
  linkTargets: LinkTarget[];
  /** Flocker's explicit links. */
  links: z.infer<typeof Link>[];
  restart_policy: RestartPolicy;
  cpu_shares?: number;
  memory_limit?: number;
  /** Compose's `mem_swappiness` (Docker's --memory-swappiness, 0–100). */
  swappiness?: number;
  health_check?: HealthCheck;
  placement?: Placement;
  /** `x-drover.replication` (compose-replication.ts). */
  replication?: ReplicationPolicy;
  /** Several instances (compose-instances.ts, docs/DESIGN.md §30). */
  instances?: number;
  mode?: 'global';
  update_config?: UpdateConfig;
  /** `x-drover.move` (compose-move.ts). */
  move?: MovePolicy;
  labels: Record<string, string>;
  /** Some of its keys had problems (recorded): it is not checked as a whole application. */
  incomplete?: true;
  /** The Compose keys with a Docker meaning of their own (compose-runtime-keys.ts). */
  runtime: RuntimeFields;
  /** configs, secrets and read-only project binds (compose-files.ts). */
  files: AppFile[];
  /** `x-drover.secret_env`: name → secret id. */
  secret_environment?: Record<string, string>;
}

/** Application fields set from Compose's container keys, as the model names them. */
export type RuntimeFields = Partial<
  Pick<
    Application,
    | 'container_name'
    | 'hostname'
    | 'user'
    | 'working_dir'
    | 'stop_signal'
    | 'stop_grace_period_seconds'
    | 'cap_add'
    | 'cap_drop'
    | 'read_only'
    | 'tmpfs'
    | 'init'
    | 'shm_size'
    | 'ulimits'
    | 'logging'
    | 'dns'
    | 'dns_search'
    | 'dns_opt'
    | 'extra_hosts'
    | 'sysctls'
    | 'tty'
    | 'stdin_open'
    | 'security_opt'
    | 'domainname'
    | 'group_add'
    | 'oom_score_adj'
    | 'cpuset'
    | 'ipc'
    | 'mem_reservation'
    | 'memswap_limit'
    | 'pids_limit'
    | 'host_binds'
  >
>;

export interface VolumeUse {
  /** The volume's name in the file (for Flocker files and anonymous volumes, the service). */
  volume: string;
  mountpoint: string;
  /** Compose `- /path` with no name: the volume is named after the service. */
  anonymous: boolean;
  /** `:ro`, or `read_only: true` in the long syntax. */
  readOnly: boolean;
  /** Key path inside the service, for errors. */
  key: PropertyKey[];
}

export interface LinkTarget {
  service: string;
  alias: string;
  key: PropertyKey[];
  /** `depends_on: { x: { required: false } }`: no error when the service is absent. */
  optional?: boolean;
  /** A `depends_on` entry: start only once the service meets this. */
  condition?: Dependency['condition'];
}

/** A volume declared by the file (Compose top-level `volumes:`, or implied by a service). */
export interface VolumeDraft {
  name: string;
  maximum_size: number | null;
  /** Flocker files may name an existing dataset. */
  dataset_id?: string;
}

export interface FileDraft {
  services: ServiceDraft[];
  volumes: Map<string, VolumeDraft>;
  /** Compose: named volumes must be declared at the top level. Fig and Flocker: implied. */
  volumesMustBeDeclared: boolean;
  /** Services left out because none of their `profiles:` is active (for clearer link errors). */
  inactive: ReadonlySet<string>;
  /** The top-level `name:` of a Compose file, if any. */
  name?: string;
  /** File contents the deploy must store, by id (compose-files.ts). */
  contents?: Map<string, DeployContent>;
}

export type { Application };
