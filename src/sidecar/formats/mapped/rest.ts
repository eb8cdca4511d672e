/**
 * What no field read: the input minus the members a mapping carried into the
 * event, kept under details so nothing the input said is dropped.
 *
 * Contracts:
 * - A member counts as read only when a field carried its value unchanged
 *   (apply.ts decides; a value changed by `map:` or cut by a time conversion
 *   stays in the rest). Reading `a.b` removes `b` from `a` and keeps `a`'s
 *   other members; an object left empty is dropped with it.
 * - An array counts as read only when a field read it whole: reading
 *   `messages[0].role` keeps `messages` as it is, since taking an element
 *   out would renumber the others.
 * - Work is bounded by the read paths (each at most MAX_PATH_DEPTH deep):
 *   unread subtrees are shared, not copied or walked, so deep or huge input
 *   costs nothing here. Objects built are plain with own data properties
 *   ("__proto__" stays a key).
 */
import { defineKey } from '../../../core/own-key.js';
import type { Segment } from './paths.js';
import { isPlainObject } from './values.js';

export class ReadSet {
  private readonly root: Node = { whole: false, children: new Map() };

  add(path: readonly Segment[]): void {
    let n = this.root;
    for (const seg of path) {
      if (n.whole) return;
      let next = n.children.get(seg);
      if (!next) n.children.set(seg, (next = { whole: false, children: new Map() }));
      n = next;
    }
    n.whole = true;
  }

  /** The unread part of `input`, or undefined when everything was read. */
  restOf(input: unknown): unknown {
    return rest(input, this.root);
  }
}

interface Node {
  whole: boolean;
  children: Map<Segment, Node>;
}

function rest(value: unknown, node: Node): unknown {
  if (node.whole) return undefined;
  if (node.children.size === 0 || !isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  let kept = 0;
  for (const k of Object.keys(value)) {
    const child = node.children.get(k);
    const r = child ? rest(value[k], child) : value[k];
    if (r === undefined) continue;
    defineKey(out, k, r);
    kept++;
  }
  return kept === 0 ? undefined : out;
}
