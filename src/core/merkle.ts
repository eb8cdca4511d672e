import { createHash, hash as oneShotHash } from 'node:crypto';
import { ProofError } from './errors.js';

/**
 * RFC 9162 §2.1 Merkle tree over leaf hashes (SHA-256).
 *
 * Sizes and indices are JavaScript numbers limited to 2^53-1, so all bit
 * arithmetic below uses division, never the 32-bit bitwise operators.
 */

export const HASH_SIZE = 32;

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A hash as proofs and bundles carry it: the standard base64 of HASH_SIZE
 * bytes in its one strict form (the last character's unused bits zero), so
 * a hash has a single spelling; undefined for anything else.
 */
export function hashFromBase64(v: unknown): Buffer | undefined {
  if (typeof v !== 'string' || !BASE64_HASH.test(v)) return undefined;
  const b = Buffer.from(v, 'base64');
  return b.length === HASH_SIZE && b.toString('base64') === v ? b : undefined;
}

// One-shot crypto.hash over a reused scratch buffer is about twice as fast
// as createHash().update()...digest() for these tiny inputs. Safe because
// hashing is synchronous and the scratch never escapes.
const NODE_SCRATCH = Buffer.alloc(1 + 2 * 32);
const LEAF_SCRATCH = Buffer.alloc(16 * 1024);

/** Proofs never need more than one hash per tree level (2^53 leaves → 53). */
const MAX_PROOF_LENGTH = 64;

export function leafHash(data: Uint8Array): Buffer {
  const n = data.length + 1;
  const buf = n <= LEAF_SCRATCH.length ? LEAF_SCRATCH : Buffer.allocUnsafe(n);
  buf[0] = 0x00;
  buf.set(data, 1);
  return oneShotHash('sha256', buf.subarray(0, n), 'buffer');
}

/**
 * leafHash of a string's UTF-8 bytes, encoded straight into the scratch
 * buffer (the collector hashes every received record's text: one copy less).
 */
export function leafHashOfText(text: string): Buffer {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (text.length * 3 + 1 > LEAF_SCRATCH.length) return leafHash(Buffer.from(text, 'utf8'));
  LEAF_SCRATCH[0] = 0x00;
  const n = LEAF_SCRATCH.write(text, 1, 'utf8') + 1;
  return oneShotHash('sha256', LEAF_SCRATCH.subarray(0, n), 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    NODE_SCRATCH[0] = 0x01;
    NODE_SCRATCH.set(left, 1);
    NODE_SCRATCH.set(right, 1 + HASH_SIZE);
    return oneShotHash('sha256', NODE_SCRATCH, 'buffer');
  }
  // Only test vectors hash children that are not 32 bytes.
  return createHash('sha256').update(Buffer.from([0x01])).update(left).update(right).digest();
}

/** MTH({}) = SHA-256(""). Shared instance: copy before handing it to callers who may mutate. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

/** Largest power of two strictly smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * MTH over leaves[begin, end). Pairing level by level and carrying an odd
 * last node upwards yields the same left-balanced tree as the recursive
 * definition (k = largest power of two < n), without recursion.
 */
function subtreeRoot(leaves: readonly Uint8Array[], begin: number, end: number): Buffer {
  const n = end - begin;
  if (n === 0) return Buffer.from(EMPTY_ROOT);
  if (n === 1) return Buffer.from(leaves[begin] as Uint8Array);
  let level: Uint8Array[] = [];
  for (let i = begin; i + 1 < end; i += 2) {
    level.push(nodeHash(leaves[i] as Uint8Array, leaves[i + 1] as Uint8Array));
  }
  if (n % 2 === 1) level.push(leaves[end - 1] as Uint8Array);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      next.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Uint8Array);
    level = next;
  }
  return Buffer.from(level[0] as Uint8Array);
}

export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Buffer {
  return subtreeRoot(leaves, 0, leaves.length);
}

/** RFC 9162 §2.1.3.1 (PATH from RFC 6962 §2.1.1). */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Buffer[] {
  const n = leaves.length;
  if (!isSize(index) || index >= n) {
    throw new ProofError('proof_out_of_range', `inclusion proof: index ${String(index)} outside tree of size ${n}`);
  }
  const proof: Buffer[] = [];
  path(leaves, index, 0, n, proof);
  return proof;
}

// Appends in the order the RFC defines: deepest sibling first.
function path(leaves: readonly Uint8Array[], m: number, begin: number, end: number, out: Buffer[]): void {
  const n = end - begin;
  if (n <= 1) return;
  const k = splitPoint(n);
  if (m < k) {
    path(leaves, m, begin, begin + k, out);
    out.push(subtreeRoot(leaves, begin + k, end));
  } else {
    path(leaves, m - k, begin + k, end, out);
    out.push(subtreeRoot(leaves, begin, begin + k));
  }
}

/** RFC 9162 §2.1.4.1 (PROOF/SUBPROOF from RFC 6962 §2.1.2). Empty for oldSize 0 or oldSize == size. */
export function consistencyProof(leaves: readonly Uint8Array[], oldSize: number): Buffer[] {
  const n = leaves.length;
  if (!isSize(oldSize) || oldSize > n) {
    throw new ProofError(
      'proof_out_of_range',
      `consistency proof: old size ${String(oldSize)} outside tree of size ${n}`,
    );
  }
  const proof: Buffer[] = [];
  if (oldSize === 0 || oldSize === n) return proof;
  subproof(leaves, oldSize, 0, n, true, proof);
  return proof;
}

function subproof(
  leaves: readonly Uint8Array[],
  m: number,
  begin: number,
  end: number,
  complete: boolean,
  out: Buffer[],
): void {
  const n = end - begin;
  if (m === n) {
    if (!complete) out.push(subtreeRoot(leaves, begin, end));
    return;
  }
  const k = splitPoint(n);
  if (m <= k) {
    subproof(leaves, m, begin, begin + k, complete, out);
    out.push(subtreeRoot(leaves, begin + k, end));
  } else {
    subproof(leaves, m - k, begin + k, end, false, out);
    out.push(subtreeRoot(leaves, begin, begin + k));
  }
}

function validProof(proof: unknown): proof is readonly Uint8Array[] {
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_LENGTH) return false;
  for (const p of proof) if (!isHash(p)) return false;
  return true;
}

/**
 * RFC 9162 §2.1.3.2; `leaf` is the leaf hash. Never throws.
 *
 * The algorithm does not bind treeSize by itself (a proof for size n can
 * also fit n±1 when the path shape is the same), so treeSize and root must
 * both come from the same signed checkpoint.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    if (!isHash(leaf) || !isHash(root) || !isSize(index) || !isSize(treeSize) || !validProof(proof)) {
      return false;
    }
    if (index >= treeSize) return false;
    let fn = index;
    let sn = treeSize - 1;
    let r: Uint8Array = leaf;
    for (const p of proof) {
      if (sn === 0) return false;
      if (isOdd(fn) || fn === sn) {
        r = nodeHash(p, r);
        if (!isOdd(fn)) {
          while (!isOdd(fn) && fn !== 0) {
            fn = half(fn);
            sn = half(sn);
          }
        }
      } else {
        r = nodeHash(r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return sn === 0 && bytesEqual(r, root);
  } catch {
    return false;
  }
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * RFC 9162 §2.1.4.2 for 0 < oldSize < newSize; as for inclusion, each size
 * must come with its own root from a signed checkpoint. Edge cases the RFC leaves
 * to the caller: equal sizes need equal roots and an empty proof; the empty
 * tree is consistent with any tree, with an empty proof, provided oldRoot
 * really is the empty root. Never throws.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  try {
    if (!isSize(oldSize) || !isSize(newSize) || !isHash(oldRoot) || !isHash(newRoot) || !validProof(proof)) {
      return false;
    }
    if (oldSize > newSize) return false;
    if (oldSize === 0) return proof.length === 0 && bytesEqual(oldRoot, EMPTY_ROOT);
    if (oldSize === newSize) return proof.length === 0 && bytesEqual(oldRoot, newRoot);

    // 1.
    if (proof.length === 0) return false;
    // 2.
    const path: readonly Uint8Array[] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
    // 3.
    let fn = oldSize - 1;
    let sn = newSize - 1;
    // 4.
    while (isOdd(fn)) {
      fn = half(fn);
      sn = half(sn);
    }
    // 5.
    let fr: Uint8Array = path[0] as Uint8Array;
    let sr: Uint8Array = path[0] as Uint8Array;
    // 6.
    for (let i = 1; i < path.length; i++) {
      const c = path[i] as Uint8Array;
      if (sn === 0) return false;
      if (isOdd(fn) || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        if (!isOdd(fn)) {
          while (!isOdd(fn) && fn !== 0) {
            fn = half(fn);
            sn = half(sn);
          }
        }
      } else {
        sr = nodeHash(sr, c);
      }
      fn = half(fn);
      sn = half(sn);
    }
    // 7.
    return sn === 0 && bytesEqual(fr, oldRoot) && bytesEqual(sr, newRoot);
  } catch {
    return false;
  }
}

function popcount(n: number): number {
  let c = 0;
  while (n > 0) {
    if (n % 2 === 1) c++;
    n = half(n);
  }
  return c;
}

/**
 * The right edge of the tree: roots of the complete subtrees that make up
 * a tree of `size` leaves, largest (leftmost) first — one per set bit of
 * size. Enough to append leaves and to compute the root in O(log n).
 */
export class Frontier {
  #size: number;
  #hashes: Buffer[];

  private constructor(size: number, hashes: Buffer[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  static empty(): Frontier {
    return new Frontier(0, []);
  }

  static fromBytes(size: number, bytes: Uint8Array): Frontier {
    if (!isSize(size)) {
      throw new ProofError('frontier_invalid', 'frontier: size must be a non-negative safe integer');
    }
    if (!(bytes instanceof Uint8Array)) {
      throw new ProofError('frontier_invalid', 'frontier: bytes must be a Uint8Array');
    }
    const count = popcount(size);
    if (bytes.length !== count * HASH_SIZE) {
      throw new ProofError(
        'frontier_invalid',
        `frontier: size ${size} needs ${count} hashes (${count * HASH_SIZE} bytes), got ${bytes.length} bytes`,
      );
    }
    const hashes: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      hashes.push(Buffer.from(bytes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)));
    }
    return new Frontier(size, hashes);
  }

  get size(): number {
    return this.#size;
  }

  hashes(): Buffer[] {
    return this.#hashes.map((h) => Buffer.from(h));
  }

  append(leafHash: Uint8Array): void {
    if (!isHash(leafHash)) {
      throw new ProofError('frontier_invalid', `frontier: leaf hash must be ${HASH_SIZE} bytes`);
    }
    if (this.#size >= Number.MAX_SAFE_INTEGER) {
      throw new ProofError('frontier_invalid', 'frontier: tree size limit reached');
    }
    // Each trailing 1 bit of the old size is a complete subtree of the same
    // height as the one being carried up: merge them, like binary addition.
    let h: Buffer = Buffer.from(leafHash);
    let s = this.#size;
    while (isOdd(s)) {
      h = nodeHash(this.#hashes.pop() as Buffer, h);
      s = half(s);
    }
    this.#hashes.push(h);
    this.#size += 1;
  }

  root(): Buffer {
    const hs = this.#hashes;
    if (hs.length === 0) return Buffer.from(EMPTY_ROOT);
    let r: Buffer = hs[hs.length - 1] as Buffer;
    for (let i = hs.length - 2; i >= 0; i--) r = nodeHash(hs[i] as Buffer, r);
    return Buffer.from(r);
  }

  clone(): Frontier {
    return new Frontier(this.#size, this.hashes());
  }

  toBytes(): Buffer {
    return Buffer.concat(this.#hashes, this.#hashes.length * HASH_SIZE);
  }
}
