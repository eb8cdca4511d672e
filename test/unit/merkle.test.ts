import { describe, it, expect } from 'vitest';
import {
  EMPTY_ROOT,
  Frontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  leafHashOfText,
  nodeHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/core/merkle.js';
import { ProofError } from '../../src/core/errors.js';
import { prng } from '../helpers/prng.js';

const hx = (s: string): Buffer => Buffer.from(s, 'hex');
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex'));

// ---------------------------------------------------------------------------
// Published vectors. All expected hashes below are copied from
// transparency-dev/merkle (testonly/constants.go, proof/verify_test.go,
// proof/proof_test.go, rfc6962/rfc6962_test.go) — the RFC 6962 reference
// vectors shared with google/certificate-transparency-go.
// ---------------------------------------------------------------------------

// testonly/constants.go LeafInputs()
const LEAF_INPUTS = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(hx);

// testonly/constants.go RootHashes(), indexed by tree size.
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

// testonly/constants.go NodeHashes(): [level][index] of complete subtrees.
const NODES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];
const id = (level: number, index: number): string => NODES[level]![index]!;

// testonly/constants.go CompactTrees(): the frontier for each size.
const COMPACT: string[][] = [
  [],
  [id(0, 0)],
  [id(1, 0)],
  [id(1, 0), id(0, 2)],
  [id(2, 0)],
  [id(2, 0), id(0, 4)],
  [id(2, 0), id(1, 2)],
  [id(2, 0), id(1, 2), id(0, 6)],
  [id(3, 0)],
];

// proof/verify_test.go inclusionProofs: {leaf (1-based), size, proof}
const INCLUSION: { leaf: number; size: number; proof: string[] }[] = [
  { leaf: 1, size: 1, proof: [] },
  {
    leaf: 1,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    leaf: 6,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { leaf: 3, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    leaf: 2,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

// proof/verify_test.go consistencyProofs: {size1, size2, proof}
const CONSISTENCY: { size1: number; size2: number; proof: string[] }[] = [
  { size1: 1, size2: 1, proof: [] },
  {
    size1: 1,
    size2: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

// proof/proof_test.go TestInclusion / TestConsistency node lists (the cases
// without re-hashed nodes), resolved through NodeHashes above.
const INCLUSION_NODES: { size: number; index: number; nodes: string[] }[] = [
  { size: 1, index: 0, nodes: [] },
  { size: 2, index: 0, nodes: [id(0, 1)] },
  { size: 2, index: 1, nodes: [id(0, 0)] },
  { size: 3, index: 1, nodes: [id(0, 0), id(0, 2)] },
  { size: 7, index: 4, nodes: [id(0, 5), id(0, 6), id(2, 0)] },
  { size: 7, index: 5, nodes: [id(0, 4), id(0, 6), id(2, 0)] },
  { size: 7, index: 6, nodes: [id(1, 2), id(2, 0)] },
  { size: 4, index: 2, nodes: [id(0, 3), id(1, 0)] },
  { size: 5, index: 3, nodes: [id(0, 2), id(1, 0), id(0, 4)] },
  { size: 6, index: 3, nodes: [id(0, 2), id(1, 0), id(1, 2)] },
  { size: 6, index: 4, nodes: [id(0, 5), id(2, 0)] },
];
const CONSISTENCY_NODES: { size1: number; size2: number; nodes: string[] }[] = [
  { size1: 1, size2: 2, nodes: [id(0, 1)] },
  { size1: 1, size2: 4, nodes: [id(0, 1), id(1, 1)] },
  { size1: 1, size2: 6, nodes: [id(0, 1), id(1, 1), id(1, 2)] },
  { size1: 2, size2: 3, nodes: [id(0, 2)] },
  { size1: 2, size2: 8, nodes: [id(1, 1), id(2, 1)] },
  { size1: 5, size2: 7, nodes: [id(0, 4), id(0, 5), id(0, 6), id(2, 0)] },
  { size1: 6, size2: 7, nodes: [id(1, 2), id(0, 6), id(2, 0)] },
  { size1: 7, size2: 8, nodes: [id(0, 6), id(0, 7), id(1, 2), id(2, 0)] },
  { size1: 2, size2: 4, nodes: [id(1, 1)] },
  { size1: 3, size2: 5, nodes: [id(0, 2), id(0, 3), id(1, 0), id(0, 4)] },
  { size1: 3, size2: 6, nodes: [id(0, 2), id(0, 3), id(1, 0), id(1, 2)] },
  { size1: 4, size2: 6, nodes: [id(1, 2)] },
  ...[1, 2, 3, 4, 5, 7, 8].map((s) => ({ size1: s, size2: s, nodes: [] as string[] })),
];

const LEAVES = LEAF_INPUTS.map((d) => leafHash(d));

describe('RFC 6962 hashing (rfc6962/rfc6962_test.go)', () => {
  it('empty root, empty leaf, leaf, node', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(new Uint8Array(0)).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    expect(leafHash(Buffer.from('L123456')).toString('hex')).toBe(
      '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
    );
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex')).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
  });

  it('leafHashOfText equals leafHash of the UTF-8 bytes, for short, multi-byte and scratch-exceeding text', () => {
    expect(leafHashOfText('L123456').toString('hex')).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
    expect(leafHashOfText('').equals(leafHash(new Uint8Array(0)))).toBe(true);
    const rnd = prng(7);
    const parts = ['a', 'é', '€', '😀', '"', '\\', '\u2028'];
    for (const len of [1, 100, 5000, 5461, 5462, 16_383, 16_384, 40_000]) {
      const text = Array.from({ length: len }, () => parts[Math.floor(rnd() * parts.length)]).join('');
      expect(leafHashOfText(text).equals(leafHash(Buffer.from(text, 'utf8'))), String(len)).toBe(true);
    }
    // The scratch buffer is reused: an earlier long text must not leak into a later short one.
    leafHashOfText('x'.repeat(5000));
    expect(leafHashOfText('L123456').toString('hex')).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
  });

  it('leaf hashes of the 8 reference inputs equal NodeHashes level 0', () => {
    expect(hexes(LEAVES)).toEqual(NODES[0]);
  });
});

describe('roots and frontier (testonly/constants.go)', () => {
  it('rootFromLeafHashes for sizes 0..8', () => {
    for (let n = 0; n <= 8; n++) {
      expect(rootFromLeafHashes(LEAVES.slice(0, n)).toString('hex'), `size ${n}`).toBe(ROOTS[n]);
    }
  });

  it('Frontier hashes equal CompactTrees() and root() equals RootHashes() for sizes 0..8', () => {
    const f = Frontier.empty();
    for (let n = 0; n <= 8; n++) {
      if (n > 0) f.append(LEAVES[n - 1]!);
      expect(f.size).toBe(n);
      expect(hexes(f.hashes()), `size ${n}`).toEqual(COMPACT[n]);
      expect(f.root().toString('hex'), `size ${n}`).toBe(ROOTS[n]);
    }
  });
});

describe('proof generation against published vectors', () => {
  for (const v of INCLUSION) {
    it(`inclusion proof leaf ${v.leaf - 1} in size ${v.size} (verify_test.go)`, () => {
      expect(hexes(inclusionProof(LEAVES.slice(0, v.size), v.leaf - 1))).toEqual(v.proof);
    });
  }
  for (const v of INCLUSION_NODES) {
    it(`inclusion proof index ${v.index} in size ${v.size} (proof_test.go)`, () => {
      expect(hexes(inclusionProof(LEAVES.slice(0, v.size), v.index))).toEqual(v.nodes);
    });
  }
  for (const v of CONSISTENCY) {
    it(`consistency proof ${v.size1} -> ${v.size2} (verify_test.go)`, () => {
      expect(hexes(consistencyProof(LEAVES.slice(0, v.size2), v.size1))).toEqual(v.proof);
    });
  }
  for (const v of CONSISTENCY_NODES) {
    it(`consistency proof ${v.size1} -> ${v.size2} (proof_test.go)`, () => {
      expect(hexes(consistencyProof(LEAVES.slice(0, v.size2), v.size1))).toEqual(v.nodes);
    });
  }

  it('refuses out-of-range arguments with ProofError (proof_test.go error cases)', () => {
    const bad: [number, number][] = [
      [0, 0],
      [0, 1],
      [1, 2],
      [0, 3],
      [7, 8],
    ];
    for (const [size, index] of bad) {
      expect(() => inclusionProof(LEAVES.slice(0, size), index)).toThrow(ProofError);
    }
    expect(() => inclusionProof(LEAVES, -1)).toThrow(ProofError);
    expect(() => inclusionProof(LEAVES, 1.5)).toThrow(ProofError);
    expect(() => consistencyProof(LEAVES.slice(0, 0), 5)).toThrow(ProofError);
    expect(() => consistencyProof(LEAVES.slice(0, 8), 9)).toThrow(ProofError);
    expect(() => consistencyProof(LEAVES, -1)).toThrow(ProofError);
    expect(consistencyProof(LEAVES, 0)).toEqual([]);
  });
});

describe('proof verification against published vectors', () => {
  const root = (n: number): Buffer => hx(ROOTS[n]!);
  const someHash = hx('abacaba000000000000000000000000000000000000000000060061e00123456');

  for (const v of INCLUSION) {
    it(`accepts inclusion leaf ${v.leaf - 1} in size ${v.size}, refuses corruptions (verify_test.go probes)`, () => {
      const leaf = LEAVES[v.leaf - 1]!;
      const i = v.leaf - 1;
      const n = v.size;
      const proof = v.proof.map(hx);
      expect(verifyInclusion(leaf, i, n, proof, root(n))).toBe(true);
      const probes: [number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        [i - 1, n, leaf, root(n), proof],
        [i + 1, n, leaf, root(n), proof],
        [i ^ 2, n, leaf, root(n), proof],
        [i, n * 2, leaf, root(n), proof],
        [i, Math.floor(n / 2), leaf, root(n), proof],
        [i, n, Buffer.from('WrongLeaf'), root(n), proof],
        [i, n, leafHash(Buffer.from('WrongLeaf')), root(n), proof],
        [i, n, leaf, EMPTY_ROOT, proof],
        [i, n, leaf, someHash, proof],
        [i, n, leaf, root(n), [...proof, new Uint8Array(0)]],
        [i, n, leaf, root(n), [...proof, root(n)]],
        [i, n, leaf, root(n), [new Uint8Array(0), ...proof]],
        [i, n, leaf, root(n), [root(n), ...proof]],
      ];
      for (let k = 0; k < proof.length; k++) {
        const p = proof.map((x) => Buffer.from(x));
        p[k]![0]! ^= 8;
        probes.push([i, n, leaf, root(n), p]);
      }
      if (proof.length > 0) probes.push([i, n, leaf, root(n), proof.slice(0, -1)]);
      if (proof.length > 1) probes.push([i, n, leaf, root(n), [proof[0]!, someHash, ...proof.slice(1)]]);
      for (const [pi, pn, pl, pr, pp] of probes) {
        expect(verifyInclusion(pl, pi, pn, pp, pr), `probe ${pi}/${pn}`).toBe(false);
      }
    });
  }

  for (const v of CONSISTENCY) {
    it(`accepts consistency ${v.size1} -> ${v.size2}, refuses corruptions (verify_test.go probes)`, () => {
      const { size1: m, size2: n } = v;
      const proof = v.proof.map(hx);
      expect(verifyConsistency(m, n, root(m), root(n), proof)).toBe(true);
      if (proof.length === 0) return;
      const probes: [number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        [m - 1, n, root(m), root(n), proof],
        [m + 1, n, root(m), root(n), proof],
        [m ^ 2, n, root(m), root(n), proof],
        [m, n * 2, root(m), root(n), proof],
        [m, Math.floor(n / 2), root(m), root(n), proof],
        [m, n, Buffer.from('WrongRoot'), root(n), proof],
        [m, n, root(m), Buffer.from('WrongRoot'), proof],
        [m, n, root(n), root(m), proof],
        [m, n, root(m), root(n), []],
        [m, n, root(m), root(n), [...proof, new Uint8Array(0)]],
        [m, n, root(m), root(n), [...proof, root(m)]],
        [m, n, root(m), root(n), [...proof, root(n)]],
        [m, n, root(m), root(n), [new Uint8Array(0), ...proof]],
        [m, n, root(m), root(n), [root(m), ...proof]],
        [m, n, root(m), root(n), [root(n), ...proof]],
        [m, n, root(m), root(n), [proof[0]!, ...proof]],
        [m, n, root(m), root(n), proof.slice(0, -1)],
      ];
      for (let k = 0; k < proof.length; k++) {
        const p = proof.map((x) => Buffer.from(x));
        p[k]![0]! ^= 16;
        probes.push([m, n, root(m), root(n), p]);
      }
      for (const [pm, pn, r1, r2, pp] of probes) {
        expect(verifyConsistency(pm, pn, r1, r2, pp), `probe ${pm}/${pn}`).toBe(false);
      }
    });
  }

  it('edge cases from TestVerifyConsistency / TestVerifyInclusion', () => {
    const r1 = root(1);
    const r2 = root(2);
    // sizes that are always consistent with an empty proof
    expect(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])).toBe(true);
    expect(verifyConsistency(0, 1, EMPTY_ROOT, r1, [])).toBe(true);
    expect(verifyConsistency(1, 1, r1, r1, [])).toBe(true);
    // equal sizes with different roots
    expect(verifyConsistency(1, 1, r1, r2, [])).toBe(false);
    // time travel
    expect(verifyConsistency(1, 0, r1, EMPTY_ROOT, [])).toBe(false);
    expect(verifyConsistency(2, 1, r2, r1, [])).toBe(false);
    // empty proof between different sizes
    expect(verifyConsistency(1, 2, r1, r2, [])).toBe(false);
    // roots match but the proof is not empty
    expect(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])).toBe(false);
    expect(verifyConsistency(0, 1, EMPTY_ROOT, r1, [EMPTY_ROOT])).toBe(false);
    expect(verifyConsistency(1, 1, r1, r1, [EMPTY_ROOT])).toBe(false);
    // size 0 claims need the real empty root
    expect(verifyConsistency(0, 1, someHash, r1, [])).toBe(false);
    // inclusion in trees of size 0 / out of range
    for (const [i, n] of [
      [0, 0],
      [1, 0],
      [2, 1],
    ] as const) {
      expect(verifyInclusion(someHash, i, n, [], EMPTY_ROOT)).toBe(false);
    }
    // single-entry tree: root and leaf hash are the same, proof empty
    const h = leafHash(Buffer.from('data'));
    expect(verifyInclusion(h, 0, 1, [], h)).toBe(true);
    expect(verifyInclusion(h, 0, 1, [], new Uint8Array(0))).toBe(false);
    expect(verifyInclusion(new Uint8Array(0), 0, 1, [], h)).toBe(false);
  });

  it('returns false, never throws, on malformed input', () => {
    const junk: unknown[] = [null, undefined, 'x', 1, {}, [null], [1], [Buffer.alloc(31)], [Buffer.alloc(33)]];
    const r = root(8);
    for (const j of junk) {
      expect(verifyInclusion(LEAVES[0]!, 0, 8, j as Uint8Array[], r)).toBe(false);
      expect(verifyConsistency(4, 8, root(4), r, j as Uint8Array[])).toBe(false);
      expect(verifyInclusion(j as Uint8Array, 0, 8, [], r)).toBe(false);
      expect(verifyInclusion(LEAVES[0]!, 0, 8, [], j as Uint8Array)).toBe(false);
      expect(verifyConsistency(4, 8, j as Uint8Array, r, [])).toBe(false);
      expect(verifyConsistency(4, 8, root(4), j as Uint8Array, [])).toBe(false);
    }
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '3' as unknown as number]) {
      expect(verifyInclusion(LEAVES[0]!, bad, 8, [], r)).toBe(false);
      expect(verifyInclusion(LEAVES[0]!, 0, bad, [], r)).toBe(false);
      expect(verifyConsistency(bad, 8, root(4), r, [])).toBe(false);
      expect(verifyConsistency(4, bad, root(4), r, [])).toBe(false);
    }
    // a proof far longer than any real tree needs
    expect(verifyInclusion(LEAVES[0]!, 0, 8, Array.from({ length: 100 }, () => r), r)).toBe(false);
  });

  it('handles sizes up to 2^53-1 without 32-bit truncation', () => {
    // A leaf at index 2^32 in a tree of size 2^32+1 is the right child of
    // the root: its proof is the single root of the left 2^32 subtree.
    const left = hx(id(3, 0));
    const leaf = LEAVES[0]!;
    const top = nodeHash(left, leaf);
    expect(verifyInclusion(leaf, 2 ** 32, 2 ** 32 + 1, [left], top)).toBe(true);
    expect(verifyInclusion(leaf, 0, 2 ** 32 + 1, [left], top)).toBe(false);
    const max = Number.MAX_SAFE_INTEGER;
    expect(verifyInclusion(leaf, max - 1, max, [], leaf)).toBe(false);
  });
});

describe('properties (seeded PRNG)', () => {
  const rnd = prng(0x6962);
  const MAX = 300;
  const leaves: Buffer[] = [];
  for (let i = 0; i < MAX; i++) {
    const data = Buffer.alloc(1 + Math.floor(rnd() * 16));
    for (let j = 0; j < data.length; j++) data[j] = Math.floor(rnd() * 256);
    leaves.push(leafHash(data));
  }
  const roots: Buffer[] = [];
  for (let n = 0; n <= MAX; n++) roots.push(rootFromLeafHashes(leaves.slice(0, n)));
  const randInt = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const flip = (proof: Buffer[], k: number, bit: number): Buffer[] => {
    const p = proof.map((x) => Buffer.from(x));
    p[k]![bit >> 3]! ^= 1 << (bit & 7);
    return p;
  };

  it('Frontier.root() equals rootFromLeafHashes for every size 0..300; bytes roundtrip', () => {
    const f = Frontier.empty();
    for (let n = 0; n <= MAX; n++) {
      if (n > 0) f.append(leaves[n - 1]!);
      expect(f.size).toBe(n);
      expect(f.root().equals(roots[n]!), `size ${n}`).toBe(true);
      const bytes = f.toBytes();
      const g = Frontier.fromBytes(n, bytes);
      expect(g.size).toBe(n);
      expect(g.toBytes().equals(bytes)).toBe(true);
      expect(g.root().equals(roots[n]!)).toBe(true);
      // popcount(n) hashes, largest subtree first
      expect(f.hashes().length).toBe(n.toString(2).replace(/0/g, '').length);
    }
  });

  it('clone() is independent; hashes() and root() are copies', () => {
    const f = Frontier.empty();
    for (let i = 0; i < 5; i++) f.append(leaves[i]!);
    const c = f.clone();
    c.append(leaves[5]!);
    expect(f.size).toBe(5);
    expect(f.root().equals(roots[5]!)).toBe(true);
    expect(c.root().equals(roots[6]!)).toBe(true);
    f.hashes()[0]!.fill(0);
    f.root().fill(0);
    expect(f.root().equals(roots[5]!)).toBe(true);
    Frontier.empty().root().fill(1);
    expect(EMPTY_ROOT.toString('hex')).toBe(ROOTS[0]);
  });

  it('fromBytes rejects wrong lengths and bad sizes; append rejects bad hashes', () => {
    for (let n = 0; n <= 64; n++) {
      const count = n.toString(2).replace(/0/g, '').length;
      for (const len of [count * 32 - 1, count * 32 + 1, (count + 1) * 32, (count - 1) * 32]) {
        if (len < 0) continue;
        expect(() => Frontier.fromBytes(n, Buffer.alloc(len))).toThrow(ProofError);
      }
    }
    for (const bad of [-1, 1.5, NaN, 2 ** 53]) {
      expect(() => Frontier.fromBytes(bad, Buffer.alloc(32))).toThrow(ProofError);
    }
    const f = Frontier.empty();
    expect(() => f.append(Buffer.alloc(31))).toThrow(ProofError);
    expect(() => f.append(Buffer.alloc(33))).toThrow(ProofError);
    expect(f.size).toBe(0);
    expect(Frontier.fromBytes(0, Buffer.alloc(0)).root().equals(EMPTY_ROOT)).toBe(true);
  });

  // Random sizes plus every size up to 64, to cover all small shapes.
  const sizes = new Set<number>();
  for (let n = 1; n <= 64; n++) sizes.add(n);
  while (sizes.size < 76) sizes.add(randInt(65, MAX));

  // Proof lengths straight from the RFC 6962 PATH/SUBPROOF recursions,
  // without hashing, to know which wrong sizes must change the proof shape.
  const split = (n: number): number => 2 ** Math.floor(Math.log2(n - 1));
  const pathLen = (i: number, n: number): number => (n <= 1 ? 0 : 1 + (i < split(n) ? pathLen(i, split(n)) : pathLen(i - split(n), n - split(n))));
  const subLen = (m: number, n: number, b: boolean): number => {
    if (m === n) return b ? 0 : 1;
    const k = split(n);
    return 1 + (m <= k ? subLen(m, k, b) : subLen(m - k, n - k, false));
  };

  it('every inclusion proof verifies; wrong index/size, truncation, extension, bit flips fail', () => {
    let checked = 0;
    for (const n of sizes) {
      const tree = leaves.slice(0, n);
      const root = roots[n]!;
      for (let i = 0; i < n; i++) {
        const leaf = tree[i]!;
        const proof = inclusionProof(tree, i);
        expect(proof.length).toBe(pathLen(i, n));
        expect(verifyInclusion(leaf, i, n, proof, root), `${i}/${n}`).toBe(true);
        // Every other index of the same tree fails with this proof.
        for (const j of [i - 1, i + 1, i ^ 1, i ^ 2, randInt(0, n - 1)]) {
          if (j !== i && j >= 0) expect(verifyInclusion(leaf, j, n, proof, root), `idx ${j} for ${i}/${n}`).toBe(false);
        }
        // RFC 9162 verification does not bind the tree size by itself (the
        // caller must take size and root from the same checkpoint), so a
        // wrong size is only guaranteed to fail when the proof shape differs.
        for (const m of [n * 2, Math.floor(n / 2), n - 1, n + 1, n + randInt(2, 40)]) {
          if (m > i && (m === n * 2 || m === Math.floor(n / 2) || pathLen(i, m) !== proof.length)) {
            expect(verifyInclusion(leaf, i, m, proof, root), `size ${m} for ${i}/${n}`).toBe(false);
          }
        }
        expect(verifyInclusion(leaf, i, n, proof, roots[n - 1]!)).toBe(false);
        expect(verifyInclusion(leaves[(i + 1) % MAX]!, i, n, proof, root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(leaf, i, n, proof.slice(0, -1), root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, proof.slice(1), root)).toBe(false);
          const k = randInt(0, proof.length - 1);
          expect(verifyInclusion(leaf, i, n, flip(proof, k, randInt(0, 255)), root)).toBe(false);
        }
        expect(verifyInclusion(leaf, i, n, [...proof, root], root)).toBe(false);
        expect(verifyInclusion(leaf, i, n, [...proof, leaf], root)).toBe(false);
        expect(verifyInclusion(leaf, i, n, [root, ...proof], root)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(3000);
  });

  it('every single-bit mutation of every inclusion proof element fails (sampled leaves)', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 64, 100, 255, 256, 257, 300]) {
      const tree = leaves.slice(0, n);
      for (const i of new Set([0, n - 1, randInt(0, n - 1)])) {
        const proof = inclusionProof(tree, i);
        for (let k = 0; k < proof.length; k++) {
          for (let bit = 0; bit < 256; bit++) {
            expect(verifyInclusion(tree[i]!, i, n, flip(proof, k, bit), roots[n]!)).toBe(false);
          }
        }
        // and of the leaf and the root
        for (let bit = 0; bit < 256; bit++) {
          expect(verifyInclusion(flip([tree[i]!], 0, bit)[0]!, i, n, proof, roots[n]!)).toBe(false);
          expect(verifyInclusion(tree[i]!, i, n, proof, flip([roots[n]!], 0, bit)[0]!)).toBe(false);
        }
      }
    }
  });

  it('every consistency proof verifies; wrong sizes, truncation, extension, bit flips fail', () => {
    let checked = 0;
    for (const n of sizes) {
      const tree = leaves.slice(0, n);
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof(tree, m);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof), `${m}->${n}`).toBe(true);
        if (m === 0 || m === n) {
          expect(proof).toEqual([]);
          continue;
        }
        expect(proof.length).toBe(subLen(m, n, true));
        // Old size errors always fail: fr must rebuild the old root exactly.
        for (const w of [m - 1, m + 1, m ^ 2, randInt(1, n)]) {
          if (w !== m) expect(verifyConsistency(w, n, roots[m]!, roots[n]!, proof), `old ${w} for ${m}->${n}`).toBe(false);
        }
        for (const w of [n * 2, Math.floor(n / 2), n - 1, n + 1]) {
          if (w === n * 2 || w === Math.floor(n / 2) || (w > m && subLen(m, w, true) !== proof.length)) {
            expect(verifyConsistency(m, w, roots[m]!, roots[n]!, proof), `new ${w} for ${m}->${n}`).toBe(false);
          }
        }
        expect(verifyConsistency(m, n, roots[n]!, roots[m]!, proof)).toBe(false);
        expect(verifyConsistency(m, n, roots[m - 1]!, roots[n]!, proof)).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n - 1]!, proof)).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [])).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(0, -1))).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(1))).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [...proof, roots[n]!])).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [roots[m]!, ...proof])).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [proof[0]!, ...proof])).toBe(false);
        const k = randInt(0, proof.length - 1);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, flip(proof, k, randInt(0, 255)))).toBe(false);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(3000);
  });

  it('every single-bit mutation of every consistency proof element fails (sampled pairs)', () => {
    for (const [m, n] of [
      [1, 2],
      [3, 7],
      [4, 8],
      [5, 300],
      [64, 65],
      [100, 257],
      [127, 128],
      [256, 300],
      [randInt(1, 299), 300],
    ] as [number, number][]) {
      const proof = consistencyProof(leaves.slice(0, n), m);
      for (let k = 0; k < proof.length; k++) {
        for (let bit = 0; bit < 256; bit++) {
          expect(verifyConsistency(m, n, roots[m]!, roots[n]!, flip(proof, k, bit)), `${m}->${n} [${k}] bit ${bit}`).toBe(
            false,
          );
        }
      }
    }
  });
});
