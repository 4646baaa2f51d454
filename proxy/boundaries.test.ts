import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// docs/DESIGN.md §13: node:net has one adapter file in the proxy, and so do the other
// outside pieces it uses. Tests and their support files may open sockets as they like.
const dir = import.meta.dirname;
const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

function filesMatching(pattern: RegExp): string[] {
  return sources.filter((f) => pattern.test(readFileSync(join(dir, f), 'utf8'))).sort();
}

describe('proxy boundaries', () => {
  it('reaches node:net only through tcp-net.ts', () => {
    expect(filesMatching(/from ['"](node:)?net['"]/)).toEqual(['tcp-net.ts']);
  });

  it("reaches libuv's internal handles only through tcp-uv-binding.ts", () => {
    expect(filesMatching(/\)\.binding\b/)).toEqual(['tcp-uv-binding.ts']);
  });

  it('runs commands only through nft-command.ts (nft) and ip-command.ts (ip)', () => {
    expect(filesMatching(/from ['"]execa['"]/)).toEqual(['ip-command.ts', 'nft-command.ts']);
  });

  it('starts processes only in workers.ts (proxy workers) and relay-process.ts (the native relay)', () => {
    expect(filesMatching(/from ['"](node:)?child_process['"]/)).toEqual(['relay-process.ts', 'workers.ts']);
  });

  it('reaches node:dgram only through udp.ts', () => {
    expect(filesMatching(/from ['"](node:)?dgram['"]/)).toEqual(['udp.ts']);
  });

  it('leaves process globals to main.ts', () => {
    expect(filesMatching(/process\.(argv|env|exit|on\()/)).toEqual(['main.ts']);
  });
});
