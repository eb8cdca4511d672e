/**
 * Which of a list of patterns match somewhere in a text: the question
 * RE2.Set.match answers, answered instead with a tree of RE2.Set.test
 * calls over halves of the list.
 *
 * Why: match() must run its DFA to the end of the text collecting every
 * pattern that matched, and once a match is under way the DFA's states
 * multiply (each carries the matches so far); on a text holding personal
 * data it costs 30–45 µs for 130 characters with the bundled packs. test()
 * stops at the first match, and a subset with no match scans the text in
 * well under a microsecond. With one or two rules matching, the tree asks
 * 3–9 tests (bench/README.md, bench:ingest).
 *
 * Exactness: every node's Set holds exactly the patterns of its leaves, so
 * a node that does not match rules all of them out; a node whose left half
 * does not match has its right half known to match without a test. When a
 * Set cannot be built or its DFA gives up on an input (node-re2 throws), the
 * answer is widened to every pattern under that node: the caller then runs
 * each of those rules, which is the exact path, only slower.
 */
import RE2 from 're2';
import { PATTERNS_PER_SET } from './any-of.js';

type RE2Set = InstanceType<typeof RE2.Set>;

interface Node {
  lo: number;
  hi: number;
  /** undefined: RE2 refused this subset; its leaves are all answered "may match" */
  set: RE2Set | undefined;
  left?: Node;
  right?: Node;
}

export class RuleSieve {
  readonly size: number;
  private readonly root: Node | undefined;
  /** position in the tree → index in the constructor's list; undefined when they are the same */
  private readonly order: number[] | undefined;

  /**
   * `blocks[i]`: a block id for pattern i. Patterns of one block sit under
   * one subtree of their own, so an allow-list that admits whole blocks
   * (the probe's groups, engine.ts) skips the others without a test and
   * asks each admitted block's Set once, before halving it.
   */
  constructor(patterns: readonly string[], blocks?: readonly number[]) {
    this.size = patterns.length;
    if (patterns.length === 0) {
      this.root = undefined;
      this.order = undefined;
      return;
    }
    if (blocks === undefined) {
      this.root = build(patterns, 0, patterns.length);
      this.order = undefined;
      return;
    }
    const order = patterns.map((_, i) => i).sort((a, b) => blocks[a]! - blocks[b]! || a - b);
    const placed = order.map((i) => patterns[i]!);
    const subtrees: Node[] = [];
    for (let lo = 0; lo < order.length; ) {
      let hi = lo + 1;
      while (hi < order.length && blocks[order[hi]!] === blocks[order[lo]!]) hi++;
      subtrees.push(build(placed, lo, hi));
      lo = hi;
    }
    this.root = join(placed, subtrees, 0, subtrees.length);
    this.order = order;
  }

  /**
   * Indices (ascending) of the patterns that may match `input`: all that do,
   * perhaps more. With `allow`, only patterns i with allow[i] set are asked
   * about and answered (subtrees holding none of them are not tested): the
   * caller already knows the others cannot match.
   */
  matching(input: Buffer | string, allow?: Uint8Array): number[] {
    const out: number[] = [];
    if (!this.root) return out;
    const order = this.order;
    let allowed: Int32Array | undefined;
    if (allow !== undefined) {
      // allowed[k]: how many of the tree's first k patterns are allowed, so a node's count is one subtraction.
      allowed = new Int32Array(this.size + 1);
      for (let k = 0; k < this.size; k++) allowed[k + 1] = allowed[k]! + (allow[order ? order[k]! : k] ? 1 : 0);
    }
    visit(this.root, input, false, out, allowed);
    if (!order) return out;
    for (let k = 0; k < out.length; k++) out[k] = order[out[k]!]!;
    return out.sort((a, b) => a - b);
  }
}

/** Block subtrees lo..hi-1 (adjacent ranges of `patterns`) under one tree. */
function join(patterns: readonly string[], subtrees: readonly Node[], lo: number, hi: number): Node {
  if (hi - lo === 1) return subtrees[lo]!;
  const mid = (lo + hi) >> 1;
  const left = join(patterns, subtrees, lo, mid);
  const right = join(patterns, subtrees, mid, hi);
  return { lo: left.lo, hi: right.hi, set: setOf(patterns, left.lo, right.hi), left, right };
}

/** A Set of patterns lo..hi-1 when they are few enough for one DFA to stay warm (any-of.ts), else none: the node is then answered "maybe". */
function setOf(patterns: readonly string[], lo: number, hi: number): RE2Set | undefined {
  if (hi - lo > PATTERNS_PER_SET) return undefined;
  try {
    return new RE2.Set(patterns.slice(lo, hi));
  } catch {
    return undefined;
  }
}

function build(patterns: readonly string[], lo: number, hi: number): Node {
  const node: Node = { lo, hi, set: setOf(patterns, lo, hi) };
  if (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    node.left = build(patterns, lo, mid);
    node.right = build(patterns, mid, hi);
  }
  return node;
}

/**
 * Collects the matching leaves under `node`. `known`: this node is already
 * known to match (its parent did and its left sibling did not). `allowed`:
 * prefix counts of the allowed patterns (see matching); subtrees with none
 * are skipped.
 */
function visit(node: Node, input: Buffer | string, known: boolean, out: number[], allowed?: Int32Array): void {
  if (allowed !== undefined && allowed[node.hi]! - allowed[node.lo]! === 0) return;
  const answer = known ? 'yes' : test(node, input);
  if (answer === 'no') return;
  if (!node.left || !node.right) {
    out.push(node.lo);
    return;
  }
  const before = out.length;
  visit(node.left, input, false, out, allowed);
  // A node that matches with nothing on its left matches on its right, when
  // the whole left half was asked: one with patterns skipped may have matched by one of them.
  const leftWhole = allowed === undefined || allowed[node.left.hi]! - allowed[node.left.lo]! === node.left.hi - node.left.lo;
  visit(node.right, input, answer === 'yes' && leftWhole && out.length === before, out, allowed);
}

/** 'maybe' when the node has no Set or its DFA gave up: its children are asked on their own. */
function test(node: Node, input: Buffer | string): 'yes' | 'no' | 'maybe' {
  if (node.set === undefined) return 'maybe';
  try {
    return node.set.test(input) ? 'yes' : 'no';
  } catch {
    return 'maybe';
  }
}
