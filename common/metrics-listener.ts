/**
 * The `/metrics` listener every drover process runs beside its own work (docs/DESIGN.md §25):
 * a plain HTTP server of its own, separate from the API, serving Prometheus' text format.
 * It knows nothing of prom-client: each program's `prom-metrics.ts` (the one adapter of
 * that library in the program) hands it a function that renders the text.
 *
 * Bound to 127.0.0.1 unless configured; the ports are drover's defaults, one per program, so
 * a host running all four serves them side by side.
 */
import { createServer, type Server } from 'node:http';
import { z } from 'zod';
import type { Logger } from './log.ts';

/** Default metrics ports: control 9523, agent 9524, proxy 9525, volume plugin 9526. */
export const METRICS_PORTS = { control: 9523, agent: 9524, proxy: 9525, plugin: 9526 } as const;

/** `HOST:PORT` of a metrics listener (an IPv4 address or `localhost`; port 0 picks one). */
export const MetricsListen = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}|localhost):\d{1,5}$/, 'must be HOST:PORT, e.g. 127.0.0.1:9524')
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535');

export function splitListen(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
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
  close(): Promise<void>;
}

/**
 * Listens on `listen` and answers `GET /metrics` with `source`'s text (404 elsewhere).
 * Rejects when the address cannot be bound (the caller decides whether that stops the process).
 */
export function startMetricsListener(listen: string, source: MetricsSource, log: Logger): Promise<MetricsListener> {
  const { host, port } = splitListen(listen);
  const server: Server = createServer((request, response) => {
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
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = server.address();
      const address = `${host}:${typeof bound === 'object' && bound !== null ? bound.port : port}`;
      resolve({
        address,
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
export async function serveMetrics(listen: string, source: MetricsSource, log: Logger): Promise<MetricsListener | null> {
  try {
    const listener = await startMetricsListener(listen, source, log);
    log.info({ metrics: `http://${listener.address}/metrics` }, 'metrics listener started');
    return listener;
  } catch (err) {
    log.error({ err, listen }, 'metrics listener not started: this process serves no /metrics');
    return null;
  }
}
