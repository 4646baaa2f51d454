/**
 * The `/metrics` listener every drover process runs beside its own work (docs/DESIGN.md §25):
 * a server of its own, separate from the API, serving Prometheus' text format. It knows
 * nothing of prom-client: each program's `prom-metrics.ts` (the one adapter of that library
 * in the program) hands it a function that renders the text.
 *
 * Behind the same mutual TLS as the API when the process has certificates (its own, the
 * cluster CA): HTTPS, and only a client certificate of the cluster CA with the role
 * `drover-user` or `drover-metrics` may scrape. Plain HTTP only when asked (`http://HOST:PORT`)
 * or when the process has no certificates, and then only on a loopback address.
 *
 * Bound to 127.0.0.1 unless configured; the ports are drover's defaults, one per program, so
 * a host running all four serves them side by side.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { DroverError } from './errors.ts';
import { mayScrapeMetrics } from './identity.ts';
import type { Logger } from './log.ts';

/** Default metrics ports: control 9523, agent 9524, proxy 9525, volume plugin 9526. */
export const METRICS_PORTS = { control: 9523, agent: 9524, proxy: 9525, plugin: 9526 } as const;

/**
 * `HOST:PORT` of a metrics listener (an IPv4 address or `localhost`; port 0 picks one):
 * HTTPS when the process has certificates. `http://HOST:PORT` asks for plain HTTP (a loopback
 * address only); `https://HOST:PORT` insists on TLS.
 */
export const MetricsListen = z
  .string()
  .regex(/^(https?:\/\/)?(\d{1,3}(\.\d{1,3}){3}|localhost):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:9524 (http://HOST:PORT for plain HTTP on a loopback address)')
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535');

export function splitListen(text: string): { host: string; port: number; scheme: 'http' | 'https' | null } {
  const scheme = text.startsWith('http://') ? 'http' : text.startsWith('https://') ? 'https' : null;
  const rest = scheme === null ? text : text.slice(scheme.length + 3);
  const at = rest.lastIndexOf(':');
  return { host: rest.slice(0, at), port: Number(rest.slice(at + 1)), scheme };
}

/** PEM text of the process's own certificate and key and of the cluster CA. */
export interface MetricsTls {
  ca: string;
  cert: string;
  key: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** What a program's metrics adapter gives the listener. */
export interface MetricsSource {
  /** The Prometheus text exposition of every metric of the process. */
  text(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsListener {
  /** `HOST:PORT` it listens on (the port chosen, with port 0). */
  readonly address: string;
  /** `https://HOST:PORT/metrics` or `http://…`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listens on `listen` and answers `GET /metrics` with `source`'s text (404 elsewhere): over
 * mutual TLS with `tls` (403 to a client certificate that is neither a user's nor a
 * scraper's), else plain HTTP.
 * Rejects when the address cannot be bound (the caller decides whether that stops the
 * process), and with DROVER_LISTEN_FAILED when plain HTTP is asked for on an address other
 * than loopback, or `https://` without certificates.
 */
export function startMetricsListener(listen: string, source: MetricsSource, log: Logger, tls: MetricsTls | null = null): Promise<MetricsListener> {
  const { host, port, scheme } = splitListen(listen);
  const secure = tls !== null && scheme !== 'http';
  if (scheme === 'https' && tls === null) {
    return Promise.reject(new DroverError('DROVER_LISTEN_FAILED', `metrics on ${listen}: https needs the process's certificates, and it has none`, { detail: { field: 'metrics_listen', listen } }));
  }
  if (!secure && !isLoopback(host)) {
    return Promise.reject(
      new DroverError('DROVER_LISTEN_FAILED', `metrics on ${listen}: plain HTTP (no authentication) is served only on a loopback address; give the process its certificates to serve HTTPS there`, {
        detail: { field: 'metrics_listen', listen },
      }),
    );
  }
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    if (secure && !mayScrapeMetrics((request.socket as TLSSocket).getPeerCertificate().subject)) {
      response.writeHead(403, { 'content-type': 'text/plain' }).end('only a drover-user or drover-metrics certificate of the cluster CA may scrape /metrics\n');
      return;
    }
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('drover serves only GET /metrics here\n');
      return;
    }
    source.text().then(
      (text) => response.writeHead(200, { 'content-type': source.contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'metrics not rendered');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics not rendered\n');
      },
    );
  };
  // TLS 1.3 and a client certificate of the cluster CA, as the API asks (control-service/http/tls.ts).
  const server: Server = secure ? createHttpsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, handle) : createHttpServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = server.address();
      const address = `${host}:${typeof bound === 'object' && bound !== null ? bound.port : port}`;
      resolve({
        address,
        url: `${secure ? 'https' : 'http'}://${address}/metrics`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * `startMetricsListener`, but a listener that cannot bind is logged and left out (null): the
 * process's work matters more than its metrics, and a port taken by a second process on the
 * same host (two test runs, two local clusters) must not stop an agent from converging.
 */
export async function serveMetrics(listen: string, source: MetricsSource, log: Logger, tls: MetricsTls | null = null): Promise<MetricsListener | null> {
  try {
    const listener = await startMetricsListener(listen, source, log, tls);
    log.info({ metrics: listener.url }, 'metrics listener started');
    return listener;
  } catch (err) {
    log.error({ err, listen }, 'metrics listener not started: this process serves no /metrics');
    return null;
  }
}
