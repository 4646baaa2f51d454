import type { Logger } from '#common/log.ts';

/** The test images the harness can load into a node's dockerd. */
export type LocalImage = 'busybox' | 'redis' | 'postgres';

export interface LocalClusterOptions {
  /** `[a-z][a-z0-9]{0,5}`; prefixes pools, bridges, plugin names and the state directory. */
  name: string;
  /** 1..9 */
  nodes: number;
  /** Third octet of the node addresses: node i gets 127.0.<subnet>.(10+i). Default: the recorded cluster's, else 0. */
  subnet?: number;
  /** One dockerd per node (default true). */
  docker?: boolean;
  /** One sshd per node (default true). */
  ssh?: boolean;
  /** Loaded into each node's dockerd (default ['busybox']). */
  images?: LocalImage[];
  /** Size of each node's sparse pool file, default 2048. */
  poolSizeMiB?: number;
  /**
   * Take down any cluster of that name first, data and all, instead of repairing it: for
   * callers that own the name outright (a test's leased subnet). Default false.
   */
  fresh?: boolean;
  /**
   * Each node in its own network and mount namespace (docs/DESIGN.md §20): node i gets
   * 10.229.<subnet>.(10+i) behind a veth on a cluster bridge, its dockerd sees only its own
   * plugin, and `partitionNode` can cut it off. Default false; a recorded cluster keeps its mode.
   */
  isolate?: boolean;
  /**
   * Control services (docs/DESIGN.md §31): 1 (default) — one on the file store; 3 or 5 — that
   * many on an etcd cluster of as many members, one of them leader. A recorded cluster keeps its count.
   */
  controls?: number;
  /** Default /var/lib/drover/clusters/<name>. */
  root?: string;
  log?: Logger;
}

export interface LocalNodeSsh {
  host: string;
  port: number;
  user: string;
  /** 'SHA256:…', as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  /** 'ssh-ed25519 AAAA…' (no comment). */
  hostPublicKey: string;
}

export interface LocalNode {
  index: number;
  /** 'n1' */
  name: string;
  /** Stable for the cluster's lifetime, lower-case v4, kept in stateDir. */
  uuid: string;
  address: string;
  pool: string;
  stateDir: string;
  dockerSocket: string | null;
  /** 'unix://…' */
  dockerHost: string | null;
  ssh: LocalNodeSsh | null;
  /** 'drover-n1' in the cluster named 'demo', else 'drover-<name>-n1'. */
  pluginName: string;
}

export interface LocalCluster {
  name: string;
  root: string;
  /** Nodes in their own network and mount namespaces (`isolate`); absent in older records: false. */
  isolated?: boolean;
  /** Control services on etcd (docs/DESIGN.md §31); absent: one on the file store. */
  controls?: number;
  nodes: LocalNode[];
  /** The agents' key, authorized on every node's sshd. */
  sshClientKey: { privateKeyPath: string; publicKey: string };
  /** A cluster CA (#common/certificates.ts) for mutual TLS between agents. */
  ca: { certPath: string; keyPath: string };
}
