/**
 * What the volume plugin measures (docs/DESIGN.md §25), as its app sees it: a small
 * interface, so nothing but `prom-metrics.ts` touches prom-client and tests can pass their own.
 */
export interface PluginMetrics {
  /**
   * One call from Docker answered: the endpoint (`VolumeDriver.Mount`), `ok` or `error`
   * (an `Err` answered), and how long it took in seconds.
   */
  call(endpoint: string, outcome: 'ok' | 'error', seconds: number): void;
}

export const NO_PLUGIN_METRICS: PluginMetrics = { call: () => undefined };
