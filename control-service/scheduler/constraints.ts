/**
 * Placement constraints in Swarm's syntax, as drover nodes understand them:
 * `node.labels.<name> == value`, `node.labels.<name> != value`, `node.host == 127.0.0.11`,
 * `node.uuid != …` (`node.id` is read as `node.uuid`). Values compare exactly.
 */
import type { Node } from '#common/model.ts';

export interface Constraint {
  /** The text as written, for reasons shown to the operator. */
  text: string;
  attribute: { kind: 'label'; name: string } | { kind: 'host' } | { kind: 'uuid' };
  equal: boolean;
  value: string;
}

const SHAPE = /^\s*node\.(labels\.([A-Za-z0-9_.\/-]+)|host|uuid|id)\s*(==|!=)\s*(.*?)\s*$/;

/** Parses one constraint; null when it is not one drover understands. */
export function parseConstraint(text: string): Constraint | null {
  const m = SHAPE.exec(text);
  if (!m) return null;
  const value = m[4]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  if (value === '') return null;
  const attribute: Constraint['attribute'] = m[2] !== undefined ? { kind: 'label', name: m[2] } : m[1] === 'host' ? { kind: 'host' } : { kind: 'uuid' };
  return { text: text.trim(), attribute, equal: m[3] === '==', value };
}

/** True when `node` satisfies the constraint. A missing label is "not equal". */
export function satisfies(node: Node, constraint: Constraint): boolean {
  const actual =
    constraint.attribute.kind === 'label' ? node.labels[constraint.attribute.name] : constraint.attribute.kind === 'host' ? node.host : node.uuid;
  return (actual === constraint.value) === constraint.equal;
}
