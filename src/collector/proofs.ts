import { ProofError } from '../core/errors.js';
import { Frontier, nodeHash } from '../core/merkle.js';

/**
 * RFC 9162 inclusion and consistency proofs built from stored complete
 * subtrees instead of from all leaves (pure: no I/O).
 *
 * Every hash of a proof is the root of a range of leaves [begin, end) that
 * the RFC's recursion visits. Each such range starts at a multiple of a
 * power of two at least as large as the range, so it splits, greedily from
 * the left, into O(log n) complete subtrees, and its root is their right
 * fold: MTH = H(S1, H(S2, ... H(Sk-1, Sk))). A store keeps every complete
 * subtree's root (level >= 1; level 0 is the leaf hash of the record) as the
 * tree grows, so a proof needs O(log n) stored hashes (at most about
 * 2·log2(n) distinct ones, since the incomplete ranges all lie on the right
 * edge of the tree), fetched by key.
 */

/** The complete subtree of 2^level leaves starting at leaf index * 2^level. */
export interface SubtreeRef {
  level: number;
  index: number;
}

export interface SubtreeHash extends SubtreeRef {
  hash: Buffer;
}

/** Map key of a SubtreeRef. */
export function subtreeKey(r: SubtreeRef): string {
  return `${r.level}/${r.index}`;
}

function pow2(level: number): number {
  return 2 ** level;
}

/** Largest power of two strictly smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A half-open range of leaf indices. */
export type LeafRange = readonly [begin: number, end: number];

/** The complete subtrees whose right fold is MTH(leaves[begin, end)); see the module comment. */
export function decomposeRange(begin: number, end: number): SubtreeRef[] {
  const out: SubtreeRef[] = [];
  let p = begin;
  while (p < end) {
    let size = 1;
    let level = 0;
    while (p % (size * 2) === 0 && p + size * 2 <= end) {
      size *= 2;
      level++;
    }
    out.push({ level, index: p / size });
    p += size;
  }
  return out;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProofError('proof_out_of_range', `${what} must be a non-negative safe integer`);
}

/** The ranges whose roots form the inclusion proof of leaf `index` in a tree of `size`, in RFC order. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  checkSize(index, 'leaf index');
  checkSize(size, 'tree size');
  if (index >= size) {
    throw new ProofError('proof_out_of_range', `inclusion proof: index ${index} outside tree of size ${size}`);
  }
  const stack: LeafRange[] = [];
  let begin = 0;
  let end = size;
  while (end - begin > 1) {
    const k = splitPoint(end - begin);
    if (index - begin < k) {
      stack.push([begin + k, end]);
      end = begin + k;
    } else {
      stack.push([begin, begin + k]);
      begin += k;
    }
  }
  // The recursion appends on the way back up: deepest sibling first.
  return stack.reverse();
}

/** The ranges whose roots form the consistency proof from oldSize to size, in RFC order. */
export function consistencyRanges(oldSize: number, size: number): LeafRange[] {
  checkSize(oldSize, 'old size');
  checkSize(size, 'tree size');
  if (oldSize > size) {
    throw new ProofError('proof_out_of_range', `consistency proof: old size ${oldSize} outside tree of size ${size}`);
  }
  if (oldSize === 0 || oldSize === size) return [];
  const stack: LeafRange[] = [];
  let terminal: LeafRange | undefined;
  let begin = 0;
  let end = size;
  let complete = true;
  for (;;) {
    const n = end - begin;
    const m = oldSize - begin;
    if (m === n) {
      if (!complete) terminal = [begin, end];
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      stack.push([begin + k, end]);
      end = begin + k;
    } else {
      stack.push([begin, begin + k]);
      begin += k;
      complete = false;
    }
  }
  stack.reverse();
  return terminal ? [terminal, ...stack] : stack;
}

/** Every distinct subtree the given ranges need, each once. */
export function neededSubtrees(ranges: readonly LeafRange[]): SubtreeRef[] {
  const seen = new Map<string, SubtreeRef>();
  for (const [b, e] of ranges) {
    for (const r of decomposeRange(b, e)) seen.set(subtreeKey(r), r);
  }
  return [...seen.values()];
}

/** Folds each range's subtrees into its root; throws ProofError when a needed hash is missing. */
export function assembleProof(ranges: readonly LeafRange[], hashes: ReadonlyMap<string, Buffer>): Buffer[] {
  return ranges.map(([b, e]) => {
    const refs = decomposeRange(b, e);
    const get = (r: SubtreeRef): Buffer => {
      const h = hashes.get(subtreeKey(r));
      if (!h) throw new ProofError('proof_hash_missing', `stored hash of subtree ${subtreeKey(r)} is missing`);
      return h;
    };
    let acc = get(refs[refs.length - 1]!);
    for (let i = refs.length - 2; i >= 0; i--) acc = nodeHash(get(refs[i]!), acc);
    return acc;
  });
}

/**
 * The complete subtrees of level >= 1 that come into being when `leaves`
 * are appended to the tree whose right edge is `frontier` (its hashes and
 * size): what a store keeps next to the records so that proofs cost
 * O(log n) reads. Mirrors Frontier.append: each merge completes one subtree.
 */
export function completedSubtrees(frontier: Frontier, leaves: readonly Uint8Array[]): SubtreeHash[] {
  return mergeLeaves(frontier, leaves).subtrees;
}

/**
 * completedSubtrees and the frontier after `leaves` from one pass of
 * hashing: verification needs the new root, the store the subtrees, and
 * each merge yields both.
 */
export function appendLeaves(frontier: Frontier, leaves: readonly Uint8Array[]): { subtrees: SubtreeHash[]; frontier: Frontier } {
  const m = mergeLeaves(frontier, leaves);
  return { subtrees: m.subtrees, frontier: Frontier.fromBytes(m.size, Buffer.concat(m.stack)) };
}

function mergeLeaves(frontier: Frontier, leaves: readonly Uint8Array[]): { subtrees: SubtreeHash[]; stack: Buffer[]; size: number } {
  const out: SubtreeHash[] = [];
  const stack = frontier.hashes();
  let size = frontier.size;
  for (const leaf of leaves) {
    let h: Buffer = Buffer.from(leaf);
    let s = size;
    let level = 0;
    while (s % 2 === 1) {
      h = nodeHash(stack.pop()!, h);
      s = Math.floor(s / 2);
      level++;
      out.push({ level, index: Math.floor(size / pow2(level)), hash: h });
    }
    stack.push(h);
    size++;
  }
  return { subtrees: out, stack, size };
}

/** Reads stored subtree hashes; a missing one is simply absent from the result. */
export type SubtreeReader = (refs: readonly SubtreeRef[]) => Promise<readonly SubtreeHash[]>;

/** Upper bound on hashes fetched while rebuilding subtrees that were never stored. */
export const MAX_REBUILD_READS = 1 << 20;

/**
 * Fetches the hashes for `refs`. Subtrees stored before the store kept them
 * (data written by an older version) are rebuilt from their two halves,
 * level by level down to the leaves if need be: correct, but that costs
 * O(subtree size) reads, bounded by MAX_REBUILD_READS.
 */
export async function fetchSubtrees(refs: readonly SubtreeRef[], read: SubtreeReader): Promise<Map<string, Buffer>> {
  const have = new Map<string, Buffer>();
  const wanted = new Map<string, SubtreeRef>();
  for (const r of refs) wanted.set(subtreeKey(r), r);
  // Subtrees still to compute from their children, deepest last.
  const pending: SubtreeRef[] = [];
  let reads = 0;
  let todo = [...wanted.values()];
  while (todo.length > 0) {
    reads += todo.length;
    if (reads > MAX_REBUILD_READS) {
      throw new ProofError('proof_too_expensive', 'too many subtree hashes are missing from the store to rebuild them');
    }
    for (const h of await read(todo)) have.set(subtreeKey(h), h.hash);
    const next: SubtreeRef[] = [];
    for (const r of todo) {
      if (have.has(subtreeKey(r))) continue;
      if (r.level === 0) throw new ProofError('proof_leaf_missing', `leaf ${r.index} is not stored`);
      pending.push(r);
      next.push({ level: r.level - 1, index: r.index * 2 }, { level: r.level - 1, index: r.index * 2 + 1 });
    }
    todo = next.filter((r) => !have.has(subtreeKey(r)));
  }
  // Children were requested after their parents, so compute in reverse.
  for (let i = pending.length - 1; i >= 0; i--) {
    const r = pending[i]!;
    const l = have.get(subtreeKey({ level: r.level - 1, index: r.index * 2 }));
    const rt = have.get(subtreeKey({ level: r.level - 1, index: r.index * 2 + 1 }));
    if (!l || !rt) throw new ProofError('proof_hash_missing', `cannot rebuild subtree ${subtreeKey(r)}`);
    have.set(subtreeKey(r), nodeHash(l, rt));
  }
  return have;
}

/** Inclusion proof of leaf `index` in the tree of `size` leaves. */
export async function buildInclusionProof(index: number, size: number, read: SubtreeReader): Promise<Buffer[]> {
  const ranges = inclusionRanges(index, size);
  return assembleProof(ranges, await fetchSubtrees(neededSubtrees(ranges), read));
}

/** Consistency proof from the tree of oldSize leaves to the tree of `size`. */
export async function buildConsistencyProof(oldSize: number, size: number, read: SubtreeReader): Promise<Buffer[]> {
  const ranges = consistencyRanges(oldSize, size);
  return assembleProof(ranges, await fetchSubtrees(neededSubtrees(ranges), read));
}
