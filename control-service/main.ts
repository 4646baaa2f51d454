/**
 * drover-control: wires config → store → control → HTTP, listens, and stops cleanly on
 * SIGTERM/SIGINT. The only place that exits the process (docs/DESIGN.md §11).
 */
import { z } from 'zod';
import { createLogger } from '#common/log.ts';
import { serveMetrics } from '#common/metrics-listener.ts';
import { buildApp } from './app.ts';
import { configProblems, droverVersion, readConfig, USAGE } from './config.ts';
import { Control } from './control.ts';
import { FileConfigStore } from './store/file-store.ts';
import { RevokedList, serverTlsOptions } from './http/tls.ts';
import { controlGauges } from './metrics.ts';
import { agentLogsClient } from './http/agent-logs.ts';
import { readTlsIdentity } from '#common/tls-client.ts';
import { PromControlMetrics } from './prom-metrics.ts';
import { join } from 'node:path';
import { FileVault } from './files/vault.ts';
import { loadOrCreateKey } from './files/sealing.ts';
import { checkSharedKey, EtcdVault } from './files/etcd-vault.ts';
import { ContentSweeper } from './files/sweep.ts';
import { hostname } from 'node:os';
import { EtcdClient } from './store/etcd-client.ts';
import { EtcdConfigStore } from './store/etcd-store.ts';
import { EtcdLeadership } from './cluster/leadership.ts';
import { EtcdNodeLiveness } from './cluster/node-liveness.ts';
import type { ConfigStore } from './store/config-store.ts';

const log = createLogger('drover-control');

async function main(): Promise<void> {
  let config;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (err) {
    const why = err instanceof z.ZodError ? configProblems(err) : (err as Error).message;
    process.stderr.write(`drover-control: ${why}\n${USAGE}\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const metrics = new PromControlMetrics();
  // The store: the file store (one control service), or etcd with one elected leader (docs/DESIGN.md §28).
  let store: ConfigStore;
  let etcd: { client: EtcdClient; leadership: EtcdLeadership; liveness: EtcdNodeLiveness } | null = null;
  let advertised = '';
  if (config.etcd) {
    const e = config.etcd;
    const client = new EtcdClient({ endpoints: e.endpoints, tls: e.tls ?? undefined });
    const leadership = new EtcdLeadership({ client, log, key: `${e.prefix}leader`, identity: e.identity, url: () => advertised, ttlSeconds: e.leaseTtlSeconds, renewDeadlineMs: e.renewDeadlineMs });
    store = new EtcdConfigStore({ client, log, prefix: e.prefix, writer: e.identity, fence: () => leadership.fence() });
    const liveness = new EtcdNodeLiveness({ client, prefix: e.prefix, ttlSeconds: Math.ceil(config.nodeTimeoutMs / 1000), fence: () => leadership.fence(), log });
    etcd = { client, leadership, liveness };
  } else {
    store = new FileConfigStore({ dir: config.dataDir, log, minCompactBytes: config.compactBytes });
  }
  const sealing = await loadOrCreateKey(config.secretsKeyFile);
  if (sealing.created) log.info({ keyFile: config.secretsKeyFile, fingerprint: sealing.key.fingerprint }, 'secrets key created');
  // With etcd the contents live there, shared by every control service, sealed under one key
  // whose fingerprint etcd records (docs/DESIGN.md §31); the file store keeps them in --data-dir.
  let vault;
  if (etcd && config.etcd) {
    if (await checkSharedKey(etcd.client, config.etcd.prefix, sealing.key, config.secretsKeyFile)) log.info({ fingerprint: sealing.key.fingerprint }, 'secrets key fingerprint recorded in etcd');
    vault = new EtcdVault(etcd.client, config.etcd.prefix, sealing.key);
  } else {
    vault = new FileVault(join(config.dataDir, 'contents'), sealing.key);
  }
  const control = new Control({
    store,
    log,
    nodeTimeoutMs: config.nodeTimeoutMs,
    nodeDownGraceMs: config.nodeDownGraceMs,
    failoverMarginMs: config.failoverMarginMs,
    migrationDeadlines: { stallMs: config.migrationStallMs, handoffMs: config.handoffDeadlineMs },
    replicaReplaceAfterMs: config.replicaReplaceAfterMs,
    metrics,
    vault,
    ...(etcd ? { leadership: etcd.leadership, liveness: etcd.liveness } : {}),
  });
  // Read before the store is opened: a missing certificate stops start-up with nothing touched.
  const https = config.tls ? serverTlsOptions(config.tls) : undefined;
  const revoked = config.tls ? new RevokedList(config.tls.revoked, log) : undefined;
  metrics.readFrom(controlGauges(control));
  await control.start();
  const sweeper = new ContentSweeper({ vault, desired: () => control.desired, log, graceMs: config.filesGraceMs });
  sweeper.start();
  // The agents' logs endpoints are reached with this service's own certificate (docs/DESIGN.md §27).
  const agentLogs = config.tls ? agentLogsClient(readTlsIdentity({ ca: config.tls.ca, cert: config.tls.cert, key: config.tls.key })) : undefined;
  const app = buildApp({ control, log, version: droverVersion(), bodyLimit: config.bodyLimit, metrics, ...(https ? { https } : {}), ...(revoked ? { revoked } : {}), ...(agentLogs ? { agentLogs } : {}) });
  const address = await app.listen({ host: config.listen.host, port: config.listen.port });
  // /metrics behind the control service's own certificate (docs/DESIGN.md §25).
  const metricsListener = await serveMetrics(config.metricsListen, metrics, log, https ? { ca: String(https.ca), cert: String(https.cert), key: String(https.key) } : null);
  if (etcd) {
    const port = new URL(address).port;
    const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? hostname() : config.listen.host;
    advertised = config.etcd?.advertise ?? `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    etcd.leadership.start();
  }
  revoked?.watch();
  if (config.plainHttp) {
    log.warn({ address }, 'serving plain HTTP with no authentication (--insecure-plain-http): only this machine can reach it, and every caller is a user');
    process.stderr.write(`drover-control: WARNING: plain HTTP, no authentication, on ${address} (--insecure-plain-http)\n`);
  }
  log.info({ address, tls: https !== undefined, dataDir: config.dataDir, version: control.snapshot.version, store: etcd ? 'etcd' : 'file', ...(etcd ? { identity: config.etcd?.identity, advertise: advertised } : {}) }, 'control service started');
  process.on('SIGHUP', () => revoked?.reload(true));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'control service stopping');
    try {
      revoked?.stop();
      await etcd?.leadership.stop();
      await app.close();
      await sweeper.stop();
      await metricsListener?.close();
      await control.stop();
      etcd?.client.close();
      log.info('control service stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'control service did not stop cleanly');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'control service failed to start');
  process.stderr.write(`drover-control: ${(err as Error).message}\n`);
  process.exit(1);
});
