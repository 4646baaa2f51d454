/**
 * Picks the TCP engine. `auto`: the C relay (`native`, docs/DESIGN.md §32) when it is built and
 * this Node exposes libuv's TCP handles (the relay hands back what it does not serve to the uv
 * engine), else the uv engine alone, else node:net. `auto` took the relay once the whole e2e
 * tier passed on it: it is ahead of the uv engine on new connections and CPU per request
 * (docs/DESIGN.md §32 "`auto` picks the relay"; bench/RESULTS.md "Proxy").
 */
import { silentLogger, type Logger } from '#common/log.ts';
import { createNetEngine } from './tcp-net.ts';
import type { TcpEngine, TcpEngineOptions } from './tcp.ts';
import { createNativeEngine, relayBinary } from './tcp-native.ts';
import { createUvEngine, loadUvBinding } from './tcp-uv.ts';

export const ENGINE_CHOICES = ['auto', 'uv', 'net', 'native'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** What `auto` resolves to on this machine. */
export function autoEngine(): 'native' | 'uv' | 'net' {
  if (loadUvBinding() === null) return 'net';
  return relayBinary() === null ? 'uv' : 'native';
}

/** Throws DROVER_ENGINE_UNAVAILABLE when `uv` or `native` is asked for and cannot run here. */
export function createEngine(choice: EngineChoice, options: TcpEngineOptions & { log?: Logger } = {}): TcpEngine {
  const engine = choice === 'auto' ? autoEngine() : choice;
  if (engine === 'native') return createNativeEngine({ ...options, log: options.log ?? silentLogger() });
  if (engine === 'net') return createNetEngine(options);
  return createUvEngine(options);
}
