import type { Scope } from './scope.ts';

// Swarm's grammar (swarmkit manager/constraint/constraint.go): `key == value` or `key != value`.
const KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;

/**
 * Reads `deploy.placement.constraints` in Swarm's syntax and returns them normalised to
 * `lhs == value` (one space each side). drover nodes have labels, an address and a uuid, so
 * the attributes are `node.labels.<name>`, `node.host` (the IPv4 address), `node.uuid` and
 * Swarm's `node.id` (read as `node.uuid`). Swarm's other attributes (`node.role`,
 * `node.hostname`, `node.platform.*`, `engine.labels.*`) have no meaning here and are refused.
 */
export function readConstraints(scope: Scope, key: PropertyKey[], list: string[]): string[] {
  return list.map((text, i) => {
    const at = [...key, i];
    const m = /^(.*?)(==|!=)(.*)$/.exec(text);
    if (!m) scope.failKey(at, `"${text}" is not a constraint ("node.labels.disk == ssd" or "!=")`);
    const lhs = m[1]!.trim();
    const op = m[2]!;
    const value = m[3]!.trim();
    if (!KEY.test(lhs)) scope.failKey(at, `"${text}": "${lhs}" is not a constraint key`);
    if (value === '' || !VALUE.test(value) || /[=!]=/.test(value)) scope.failKey(at, `"${text}": "${value}" is not a constraint value`);
    let attribute = lhs;
    if (lhs === 'node.id') attribute = 'node.uuid';
    else if (lhs.startsWith('node.labels.') && lhs.length > 'node.labels.'.length) attribute = lhs;
    else if (lhs !== 'node.host' && lhs !== 'node.uuid') {
      scope.failKey(at, `"${text}": drover nodes have no "${lhs}"; use node.labels.<name>, node.host or node.uuid`);
    }
    return `${attribute} ${op} ${value}`;
  });
}
