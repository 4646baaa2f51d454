import { z } from 'zod';
import type { RuntimeFields } from './draft.ts';
import type { Scope } from './scope.ts';
import { parseDuration, parseSize } from '#common/units.ts';
import { isSharedHostPath } from '#common/model.ts';

const Scalar = z.union([z.string(), z.number()]);
const Limit = z.union([z.number().int(), z.object({ soft: z.number().int(), hard: z.number().int() }).strict()], {
  error: 'must be a number or { soft, hard }',
});

/**
 * The Compose keys that set how Docker runs the container, with their shapes. Each maps to
 * one Application field and one Docker create setting (convergence-agent/docker.ts).
 */
export const RUNTIME_KEYS = {
  container_name: z.string().min(1),
  hostname: z.string().min(1),
  user: Scalar,
  working_dir: z.string().min(1),
  stop_signal: z.string().min(1),
  stop_grace_period: Scalar,
  cap_add: z.array(z.string()),
  cap_drop: z.array(z.string()),
  read_only: z.boolean(),
  tmpfs: z.union([z.string(), z.array(z.string())], { error: 'must be a path or a list of paths' }),
  init: z.boolean(),
  shm_size: Scalar,
  ulimits: z.record(z.string(), Limit),
  logging: z.object({ driver: z.string().min(1).optional(), options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).nullable().optional() }).strict(),
  tty: z.boolean(),
  stdin_open: z.boolean(),
  security_opt: z.array(z.string(), { error: 'must be a list of options ("no-new-privileges:true")' }),
  domainname: z.string().min(1),
  group_add: z.array(Scalar, { error: 'must be a list of groups' }),
  oom_score_adj: z.number().int().min(-1000).max(1000),
  cpuset: z.string(),
  ipc: z.string(),
  dns: z.union([z.string(), z.array(z.string())], { error: 'must be an address or a list of addresses' }),
  dns_search: z.union([z.string(), z.array(z.string())], { error: 'must be a domain or a list of domains' }),
  dns_opt: z.array(z.string(), { error: 'must be a list of resolver options' }),
  extra_hosts: z.union([z.array(z.string()), z.record(z.string(), z.union([z.string(), z.array(z.string())]))], { error: 'must be a list of "host:address" or a mapping' }),
  sysctls: z.union([z.array(z.string()), z.record(z.string(), Scalar)], { error: 'must be a list of "name=value" or a mapping' }),
};
type RuntimeSpec = { [K in keyof typeof RUNTIME_KEYS]?: z.infer<(typeof RUNTIME_KEYS)[K]> };

const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$/;
const DOMAIN = /^[a-zA-Z0-9_]([a-zA-Z0-9_.-]{0,252})$/;
const DNS_OPTION = /^[a-z][a-z0-9-]*(:\d+)?$/;
/**
 * The sysctls Docker lets a container set: those of the namespaces it has of its own (network,
 * IPC). Anything else changes the whole host, and Docker refuses it at start.
 */
const SYSCTL = /^(net\.[a-z0-9_.\-/]+|kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\.[a-z_]+)$/;

function isAddress(text: string): boolean {
  return IPV4.test(text) || IPV6.test(text);
}
const SIGNAL = /^(SIG[A-Z0-9+-]+|\d{1,2})$/;
/** Docker's `--ulimit` names (Linux rlimits). */
const ULIMITS = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as']);

/**
 * Reads the container keys: `container_name` (kept as a label: drover names containers
 * `drover-<service>`), `hostname`, `user`, `working_dir`, `stop_signal`,
 * `stop_grace_period` (whole seconds, rounded up), `cap_add`/`cap_drop` (`CAP_` prefix
 * optional), `read_only`, `tmpfs` (`/run` or `/run:size=64m,mode=1777`), `init`, `shm_size`,
 * `ulimits`, `logging`. Each problem is recorded; the keys that read are kept.
 */
export function readRuntimeKeys(scope: Scope, spec: RuntimeSpec): RuntimeFields {
  const out: RuntimeFields = {};
  const each = (fn: () => void): void => scope.attempt(fn, undefined);
  if (spec.container_name !== undefined) {
    each(() => {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(spec.container_name!)) scope.failKey(['container_name'], `"${spec.container_name}" is not a container name (letters, digits, "_", "." or "-")`);
      out.container_name = spec.container_name!;
    });
  }
  if (spec.hostname !== undefined) {
    each(() => {
      if (!HOSTNAME.test(spec.hostname!)) scope.failKey(['hostname'], `"${spec.hostname}" is not a host name (letters, digits, "." or "-")`);
      out.hostname = spec.hostname!;
    });
  }
  if (spec.user !== undefined) out.user = String(spec.user);
  if (spec.working_dir !== undefined) {
    each(() => {
      if (!spec.working_dir!.startsWith('/')) scope.failKey(['working_dir'], `"${spec.working_dir}" must be an absolute path in the container`);
      out.working_dir = spec.working_dir!;
    });
  }
  if (spec.stop_signal !== undefined) {
    each(() => {
      const signal = /^\d+$/.test(spec.stop_signal!) ? spec.stop_signal! : spec.stop_signal!.toUpperCase().replace(/^(?!SIG)/, 'SIG');
      if (!SIGNAL.test(signal)) scope.failKey(['stop_signal'], `"${spec.stop_signal}" is not a signal ("SIGINT", "SIGQUIT", "9")`);
      out.stop_signal = signal;
    });
  }
  if (spec.stop_grace_period !== undefined) {
    each(() => {
      const seconds = parseDuration(spec.stop_grace_period);
      if (seconds === null || seconds > 3600) scope.failKey(['stop_grace_period'], `"${spec.stop_grace_period}" is not a duration up to 1h ("10s", "1m30s")`);
      out.stop_grace_period_seconds = Math.ceil(seconds);
    });
  }
  for (const name of ['cap_add', 'cap_drop'] as const) {
    const list = spec[name];
    if (list === undefined) continue;
    const caps: string[] = [];
    list.forEach((cap, i) => {
      const upper = cap.toUpperCase().replace(/^CAP_/, '');
      if (!/^[A-Z_]+$/.test(upper)) scope.reportKey([name, i], `"${cap}" is not a capability ("NET_ADMIN", "SYS_PTRACE", "ALL")`);
      else caps.push(upper);
    });
    out[name] = caps;
  }
  if (spec.read_only !== undefined) out.read_only = spec.read_only;
  if (spec.init !== undefined) out.init = spec.init;
  if (spec.tmpfs !== undefined) {
    const list = typeof spec.tmpfs === 'string' ? [spec.tmpfs] : spec.tmpfs;
    const tmpfs: Record<string, string> = {};
    list.forEach((entry, i) => {
      const key = typeof spec.tmpfs === 'string' ? ['tmpfs'] : ['tmpfs', i];
      const colon = entry.indexOf(':');
      const path = colon < 0 ? entry : entry.slice(0, colon);
      if (!path.startsWith('/')) scope.reportKey(key, `"${entry}" must be an absolute path in the container ("/run" or "/run:size=64m")`);
      else if (tmpfs[path] !== undefined) scope.reportKey(key, `"${path}" is a tmpfs twice`);
      else tmpfs[path] = colon < 0 ? '' : entry.slice(colon + 1);
    });
    out.tmpfs = tmpfs;
  }
  if (spec.shm_size !== undefined) {
    each(() => {
      const bytes = parseSize(spec.shm_size);
      if (bytes === null || bytes < 1) scope.failKey(['shm_size'], `"${spec.shm_size}" is not a size ("64M", "1G", bytes)`);
      out.shm_size = bytes;
    });
  }
  if (spec.ulimits !== undefined) {
    const ulimits: NonNullable<RuntimeFields['ulimits']> = {};
    for (const [name, limit] of Object.entries(spec.ulimits)) {
      const soft = typeof limit === 'number' ? limit : limit.soft;
      const hard = typeof limit === 'number' ? limit : limit.hard;
      if (!ULIMITS.has(name)) scope.reportKey(['ulimits', name], `"${name}" is not a ulimit (${[...ULIMITS].join(', ')})`);
      else if (soft > hard && hard !== -1) scope.reportKey(['ulimits', name], `soft limit ${soft} is above the hard limit ${hard}`);
      else ulimits[name] = { soft, hard };
    }
    out.ulimits = ulimits;
  }
  readResolverKeys(scope, spec, out);
  readProcessKeys(scope, spec, out);
  if (spec.logging !== undefined) {
    // Compose without a driver keeps Docker's default (json-file) and applies the options to it.
    const options = Object.fromEntries(Object.entries(spec.logging.options ?? {}).map(([k, v]) => [k, String(v)]));
    out.logging = { driver: spec.logging.driver ?? 'json-file', options };
  }
  return out;
}

/**
 * `dns`, `dns_search`, `dns_opt`, `extra_hosts` and `sysctls`: how the container resolves
 * names and tunes its own network namespace. `extra_hosts` takes Compose's three spellings
 * (`host:address`, `host=address`, a mapping) and Docker's `host-gateway`. A name drover
 * already resolves for the service (its peers, docs/DESIGN.md §21) wins over nothing: both go
 * to Docker, the peer's first.
 */
function readResolverKeys(scope: Scope, spec: RuntimeSpec, out: RuntimeFields): void {
  const listOf = (v: string | string[]): { list: string[]; single: boolean } => (typeof v === 'string' ? { list: [v], single: true } : { list: v, single: false });
  if (spec.dns !== undefined) {
    const { list, single } = listOf(spec.dns);
    const dns: string[] = [];
    list.forEach((a, i) => (isAddress(a) ? dns.push(a) : scope.reportKey(single ? ['dns'] : ['dns', i], `"${a}" is not an IP address ("1.1.1.1", "fd00::53")`)));
    out.dns = dns;
  }
  if (spec.dns_search !== undefined) {
    const { list, single } = listOf(spec.dns_search);
    const search: string[] = [];
    list.forEach((d, i) => (DOMAIN.test(d) ? search.push(d) : scope.reportKey(single ? ['dns_search'] : ['dns_search', i], `"${d}" is not a domain ("example.internal")`)));
    out.dns_search = search;
  }
  if (spec.dns_opt !== undefined) {
    const options: string[] = [];
    spec.dns_opt.forEach((o, i) => (DNS_OPTION.test(o) ? options.push(o) : scope.reportKey(['dns_opt', i], `"${o}" is not a resolver option ("ndots:2", "use-vc")`)));
    out.dns_opt = options;
  }
  if (spec.extra_hosts !== undefined) {
    const pairs: { host: string; address: string; key: PropertyKey[] }[] = [];
    if (Array.isArray(spec.extra_hosts)) {
      spec.extra_hosts.forEach((entry, i) => {
        // "host:address" splits at the first colon (IPv6 addresses have more); "host=address" at "=".
        const at = entry.includes('=') ? entry.indexOf('=') : entry.indexOf(':');
        pairs.push({ host: at < 0 ? entry : entry.slice(0, at), address: at < 0 ? '' : entry.slice(at + 1), key: ['extra_hosts', i] });
      });
    } else {
      for (const [host, value] of Object.entries(spec.extra_hosts)) {
        for (const address of typeof value === 'string' ? [value] : value) pairs.push({ host, address, key: ['extra_hosts', host] });
      }
    }
    const hosts: string[] = [];
    for (const { host, address, key } of pairs) {
      const bare = address.replace(/^\[(.*)\]$/, '$1');
      if (!HOSTNAME.test(host)) scope.reportKey(key, `"${host}" is not a host name`);
      else if (bare !== 'host-gateway' && !isAddress(bare)) scope.reportKey(key, `"${address}" is not an IP address or "host-gateway" (write "${host}:10.0.0.5")`);
      else hosts.push(`${host}:${bare}`);
    }
    out.extra_hosts = hosts;
  }
  if (spec.sysctls !== undefined) {
    const entries: [string, string, PropertyKey[]][] = Array.isArray(spec.sysctls)
      ? spec.sysctls.map((e, i) => {
          const at = e.indexOf('=');
          return [at < 0 ? e : e.slice(0, at), at < 0 ? '' : e.slice(at + 1), ['sysctls', i]];
        })
      : Object.entries(spec.sysctls).map(([k, v]) => [k, String(v), ['sysctls', k]]);
    const sysctls: Record<string, string> = {};
    for (const [name, value, key] of entries) {
      if (!SYSCTL.test(name)) scope.reportKey(key, `"${name}" cannot be set for one container: only net.*, fs.mqueue.* and the IPC kernel.* settings (kernel.shmmax, kernel.sem…) belong to its own namespaces`);
      else if (value === '') scope.reportKey(key, `"${name}" has no value (write "${name}=1")`);
      else sysctls[name] = value;
    }
    out.sysctls = sysctls;
  }
}

const SECURITY_OPT = /^(no-new-privileges(:(true|false))?|seccomp[:=][^\s]+|apparmor[:=][a-zA-Z0-9_.-]+|label[:=](user|role|type|level|disable)(:[^\s]*)?|systempaths=unconfined)$/;
const CPUSET = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * `tty`, `stdin_open`, `security_opt` (no-new-privileges, seccomp, apparmor, SELinux labels),
 * `domainname`, `group_add`, `oom_score_adj`, `cpuset` and `ipc` (`private`, `shareable`,
 * `host`; another container's IPC namespace cannot follow a move, so `service:…` is refused).
 */
function readProcessKeys(scope: Scope, spec: RuntimeSpec, out: RuntimeFields): void {
  if (spec.tty !== undefined) out.tty = spec.tty;
  if (spec.stdin_open !== undefined) out.stdin_open = spec.stdin_open;
  if (spec.security_opt !== undefined) {
    const opts: string[] = [];
    spec.security_opt.forEach((o, i) => {
      if (!SECURITY_OPT.test(o)) scope.reportKey(['security_opt', i], `"${o}" is not a security option Docker takes ("no-new-privileges:true", "seccomp:unconfined", "apparmor:PROFILE", "label:type:TYPE")`);
      else if (/^seccomp[:=](?!unconfined$)/.test(o)) scope.reportKey(['security_opt', i], `"${o}": a seccomp profile file is on the operator's machine, not on the node that runs the container; use "seccomp:unconfined" or Docker's default (no option)`);
      else opts.push(o.replace(/^(seccomp|apparmor|label)=/, '$1:'));
    });
    out.security_opt = opts;
  }
  if (spec.domainname !== undefined) {
    if (!HOSTNAME.test(spec.domainname)) scope.reportKey(['domainname'], `"${spec.domainname}" is not a domain name`);
    else out.domainname = spec.domainname;
  }
  if (spec.group_add !== undefined) {
    const groups: string[] = [];
    spec.group_add.forEach((g, i) => (/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}$/.test(String(g)) ? groups.push(String(g)) : scope.reportKey(['group_add', i], `"${g}" is not a group name or id`)));
    out.group_add = groups;
  }
  if (spec.oom_score_adj !== undefined) out.oom_score_adj = spec.oom_score_adj;
  if (spec.cpuset !== undefined) {
    if (!CPUSET.test(spec.cpuset)) scope.reportKey(['cpuset'], `"${spec.cpuset}" is not a CPU list ("0-3", "0,2")`);
    else out.cpuset = spec.cpuset;
  }
  if (spec.ipc !== undefined) {
    if (spec.ipc === 'private' || spec.ipc === 'shareable' || spec.ipc === 'host') out.ipc = spec.ipc;
    else if (spec.ipc.startsWith('service:') || spec.ipc.startsWith('container:')) scope.reportKey(['ipc'], `"${spec.ipc}": another container's IPC namespace stays on its node when this service moves; use "private" or "shareable"`);
    else scope.reportKey(['ipc'], `"${spec.ipc}" is not an IPC mode ("private", "shareable", "host")`);
  }
}

/**
 * A bind of one of the model's SHARED_HOST_PATHS (the time zone, CA certificates) or below
 * one: the node's own copy, read-only. Null for every other bind (compose-files.ts reads
 * project files and refuses the rest: a host's own data would not follow a move, and a
 * container driving the node's docker.sock would work against the agent).
 */
export function readHostBind(scope: Scope, key: PropertyKey[], source: string, target: string, readOnly: boolean): { source: string; target: string } | null {
  const normal = source.replace(/\/+$/, '');
  if (!isSharedHostPath(normal)) return null;
  if (!readOnly) scope.failKey(key, `"${source}" is the node's own copy of a system file: mount it read-only (":ro")`);
  if (!target.startsWith('/')) scope.failKey(key, `"${target}" must be an absolute path in the container`);
  return { source: normal, target };
}
