/**
 * From a desired application to the container that runs it (pure).
 *
 * The config hash covers everything that needs a new container when it changes (image,
 * command, environment, ports, mounts, limits, Compose's container keys) and nothing that does not: the restart
 * policy and the health check are the agent's own business and apply to a running
 * container, and the generation is a fencing token, not configuration.
 */
import { createHash } from 'node:crypto';
import type { Application } from '#common/model.ts';
import { serviceAddress, type ServiceSubnet } from '#common/service-subnet.ts';
import { linkEnvironment } from './links.ts';
import { LABEL_APP, LABEL_CONFIG_HASH, LABEL_CONTAINER_NAME, LABEL_GENERATION, LABEL_NODE, containerName } from './labels.ts';
import type { ContainerOptions, ContainerSpec, MountedFile } from './types.ts';

export interface SpecInputs {
  nodeUuid: string;
  address: string;
  generation: number;
  /** dataset_id → host path of its mountpoint on this node. */
  mountpoints: ReadonlyMap<string, string>;
  /** This node's service subnet: the application's peers resolve to addresses in it (docs/DESIGN.md §21). */
  serviceSubnet?: ServiceSubnet;
  /** Where files and secrets are written on this node; needed when the application has files. */
  filesRoot?: string;
  secretsRoot?: string;
}

/**
 * Builds the container spec of `app`. Every volume's dataset must be in `mountpoints`
 * (the caller blocks the application otherwise); throws if one is missing.
 */
export function containerSpec(app: Application, inputs: SpecInputs): ContainerSpec {
  // Link variables point at this node's proxy, which follows the linked application.
  const envMap = { ...linkEnvironment(app, app.links, inputs.address), ...app.environment };
  const env = Object.entries(envMap)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const binds = app.volumes.map((v) => {
    const source = inputs.mountpoints.get(v.dataset_id);
    if (source === undefined) throw new Error(`no mountpoint for dataset ${v.dataset_id}`);
    return v.read_only ? { source, target: v.mountpoint, readOnly: true as const } : { source, target: v.mountpoint };
  });
  const options = containerOptions(app);
  // Published ports and exposed ones alike: the proxies reach the container through them.
  const reached = [...app.ports, ...(app.expose ?? [])];
  const ports = [...new Set(reached.filter((p) => p.protocol !== 'udp').map((p) => p.internal))].sort((a, b) => a - b);
  const udpPorts = [...new Set(reached.filter((p) => p.protocol === 'udp').map((p) => p.internal))].sort((a, b) => a - b);
  const extraHosts = peerHosts(app, inputs.serviceSubnet);
  const files = mountedFiles(app, inputs);
  const secretEnv = app.secret_environment !== undefined && Object.keys(app.secret_environment).length > 0 ? app.secret_environment : undefined;
  const body = {
    image: app.image,
    command: app.command_line ?? null,
    entrypoint: app.entrypoint ?? null,
    env,
    ports,
    // Only when set: the hash of an application without them stays what it was.
    ...(udpPorts.length > 0 ? { udpPorts } : {}),
    ...(extraHosts.length > 0 ? { extraHosts } : {}),
    hostIp: inputs.address,
    binds,
    memoryBytes: app.memory_limit ?? null,
    cpuShares: app.cpu_shares ?? null,
    swappiness: app.swappiness ?? null,
    // Only when set: the hash of an application without them stays what it was.
    ...(options === undefined ? {} : { options }),
    ...(files.length === 0 ? {} : { files }),
    ...(secretEnv === undefined ? {} : { secretEnv }),
  };
  const configHash = hashOf(body);
  return {
    name: containerName(app.name),
    app: app.name,
    ...body,
    labels: {
      ...app.labels,
      ...(app.container_name === undefined ? {} : { [LABEL_CONTAINER_NAME]: app.container_name }),
      [LABEL_NODE]: inputs.nodeUuid,
      [LABEL_APP]: app.name,
      [LABEL_GENERATION]: String(inputs.generation),
      [LABEL_CONFIG_HASH]: configHash,
    },
    configHash,
  };
}

/**
 * Where each of the application's files lives on this node: `<root>/<app>/<digest>`, the
 * digest covering what it holds and how (so a changed file is a new path), a secret under the
 * secrets tmpfs. Throws when the application has files and no root is given.
 */
function mountedFiles(app: Application, inputs: SpecInputs): MountedFile[] {
  return (app.files ?? []).map((f) => {
    const secret = f.kind === 'secret';
    const root = secret ? inputs.secretsRoot : inputs.filesRoot;
    if (root === undefined) throw new Error(`no ${secret ? 'secrets' : 'files'} directory on this node for ${f.target}`);
    const digest = createHash('sha256').update(JSON.stringify([f.target, f.blob ?? f.tree, f.mode, f.uid, f.gid])).digest('hex').slice(0, 16);
    return {
      source: `${root}/${app.name}/${digest}`,
      target: f.target,
      secret,
      ...(f.blob !== undefined ? { blob: f.blob } : {}),
      ...(f.tree !== undefined ? { tree: f.tree } : {}),
      mode: f.mode ?? 0o444,
      ...(f.uid !== undefined ? { uid: Number(f.uid) } : {}),
      ...(f.gid !== undefined ? { gid: Number(f.gid) } : {}),
    };
  });
}

/** The application's Compose container keys, or undefined when it sets none. */
function containerOptions(app: Application): ContainerOptions | undefined {
  const o: ContainerOptions = {};
  if (app.hostname !== undefined) o.hostname = app.hostname;
  if (app.user !== undefined) o.user = app.user;
  if (app.working_dir !== undefined) o.workingDir = app.working_dir;
  if (app.stop_signal !== undefined) o.stopSignal = app.stop_signal;
  if (app.stop_grace_period_seconds !== undefined) o.stopGraceSeconds = app.stop_grace_period_seconds;
  if (app.cap_add !== undefined && app.cap_add.length > 0) o.capAdd = app.cap_add;
  if (app.cap_drop !== undefined && app.cap_drop.length > 0) o.capDrop = app.cap_drop;
  if (app.read_only !== undefined) o.readOnly = app.read_only;
  if (app.tmpfs !== undefined && Object.keys(app.tmpfs).length > 0) o.tmpfs = app.tmpfs;
  if (app.init !== undefined) o.init = app.init;
  if (app.shm_size !== undefined) o.shmSizeBytes = app.shm_size;
  if (app.ulimits !== undefined && Object.keys(app.ulimits).length > 0) {
    o.ulimits = Object.entries(app.ulimits)
      .map(([name, l]) => ({ name, soft: l.soft, hard: l.hard }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  if (app.logging !== undefined) o.logging = app.logging;
  if (app.dns !== undefined && app.dns.length > 0) o.dns = app.dns;
  if (app.dns_search !== undefined && app.dns_search.length > 0) o.dnsSearch = app.dns_search;
  if (app.dns_opt !== undefined && app.dns_opt.length > 0) o.dnsOptions = app.dns_opt;
  if (app.extra_hosts !== undefined && app.extra_hosts.length > 0) o.extraHosts = app.extra_hosts;
  if (app.sysctls !== undefined && Object.keys(app.sysctls).length > 0) o.sysctls = app.sysctls;
  if (app.tty !== undefined) o.tty = app.tty;
  if (app.stdin_open !== undefined) o.openStdin = app.stdin_open;
  if (app.security_opt !== undefined && app.security_opt.length > 0) o.securityOpt = app.security_opt;
  if (app.domainname !== undefined) o.domainname = app.domainname;
  if (app.group_add !== undefined && app.group_add.length > 0) o.groupAdd = app.group_add;
  if (app.oom_score_adj !== undefined) o.oomScoreAdj = app.oom_score_adj;
  if (app.cpuset !== undefined) o.cpusetCpus = app.cpuset;
  if (app.ipc !== undefined) o.ipcMode = app.ipc;
  if (app.mem_reservation !== undefined) o.memoryReservationBytes = app.mem_reservation;
  if (app.memswap_limit !== undefined) o.memorySwapBytes = app.memswap_limit;
  if (app.pids_limit !== undefined) o.pidsLimit = app.pids_limit;
  if (app.host_binds !== undefined && app.host_binds.length > 0) o.hostBinds = app.host_binds;
  return Object.keys(o).length === 0 ? undefined : o;
}

/**
 * `name:address` for each peer the application resolves by name, its address on this node's
 * proxy (docs/DESIGN.md §21); sorted. A slot outside the node's subnet gets no entry (the
 * proxy cannot listen there either).
 */
function peerHosts(app: Application, subnet: ServiceSubnet | undefined): string[] {
  if (subnet === undefined || app.peers === undefined) return [];
  const hosts: string[] = [];
  for (const [name, slot] of Object.entries(app.peers)) {
    const address = serviceAddress(subnet, slot);
    if (address !== null) hosts.push(`${name}:${address}`);
  }
  return hosts.sort();
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}
