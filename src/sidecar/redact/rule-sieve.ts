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

  constructor(patterns: readonly string[]) {
    this.size = patterns.length;
    this.root = patterns.length > 0 ? build(patterns, 0, patterns.length) : undefined;
  }

  /** Indices (ascending) of the patterns that may match `input`: all that do, perhaps more. */
  matching(input: Buffer | string): number[] {
    const out: number[] = [];
    if (this.root) visit(this.root, input, false, out);
    return out;
  }
}

function build(patterns: readonly string[], lo: number, hi: number): Node {
  let set: RE2Set | undefined;
  if (hi - lo <= PATTERNS_PER_SET) {
    try {
      set = new RE2.Set(patterns.slice(lo, hi));
    } catch {
      set = undefined;
    }
  }
  const node: Node = { lo, hi, set };
  if (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    node.left = build(patterns, lo, mid);
    node.right = build(patterns, mid, hi);
  }
  return node;
}

/** `known`: this node is already known to match (its parent did and its left sibling did not). */
function visit(node: Node, input: Buffer | string, known: boolean, out: number[]): void {
  const answer = known ? 'yes' : test(node, input);
  if (answer === 'no') return;
  if (!node.left || !node.right) {
    out.push(node.lo);
    return;
  }
  const before = out.length;
  visit(node.left, input, false, out);
  // A node that matches with nothing on its left matches on its right.
  visit(node.right, input, answer === 'yes' && out.length === before, out);
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
