import { describe, it, expect } from 'vitest';
import { CHAIN_GENESIS, chainNext } from '../../src/core/chain.js';
import { SealtrailError } from '../../src/core/errors.js';

// RFC 4231 §4 HMAC-SHA-256 test cases whose data is at least 32 bytes, so
// it can be split into a 32-byte previous MAC and a leaf:
// chainNext(K, data[0:32], data[32:]) must equal HMAC-SHA-256(K, data).
const RFC4231: { name: string; key: Buffer; data: Buffer; mac: string }[] = [
  {
    name: 'Test Case 3 (§4.4)',
    key: Buffer.alloc(20, 0xaa),
    data: Buffer.alloc(50, 0xdd),
    mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
  },
  {
    name: 'Test Case 4 (§4.5)',
    key: Buffer.from('0102030405060708090a0b0c0d0e0f10111213141516171819', 'hex'),
    data: Buffer.alloc(50, 0xcd),
    mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
  },
  {
    name: 'Test Case 6 (§4.7)',
    key: Buffer.alloc(131, 0xaa),
    data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
  {
    name: 'Test Case 7 (§4.8)',
    key: Buffer.alloc(131, 0xaa),
    data: Buffer.from(
      'This is a test using a larger than block-size key and a larger than block-size data. ' +
        'The key needs to be hashed before being used by the HMAC algorithm.',
    ),
    mac: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  },
];

describe('chainNext', () => {
  for (const v of RFC4231) {
    it(`matches RFC 4231 ${v.name}`, () => {
      const out = chainNext(v.key, v.data.subarray(0, 32), v.data.subarray(32));
      expect(out.toString('hex')).toBe(v.mac);
    });
  }

  it('genesis is 32 zero bytes', () => {
    expect(CHAIN_GENESIS.equals(Buffer.alloc(32))).toBe(true);
  });

  it('links: changing, dropping or reordering a leaf changes every later MAC', () => {
    const key = Buffer.from('k'.repeat(32));
    const leaves = Array.from({ length: 6 }, (_, i) => Buffer.alloc(32, i + 1));
    const run = (ls: Buffer[]): string[] => {
      let mac = CHAIN_GENESIS;
      return ls.map((l) => (mac = chainNext(key, mac, l)).toString('hex'));
    };
    const base = run(leaves);
    expect(run(leaves)).toEqual(base); // deterministic
    expect(new Set(base).size).toBe(6);

    const changed = leaves.map((l) => Buffer.from(l));
    changed[2]![0]! ^= 1;
    const c = run(changed);
    expect(c.slice(0, 2)).toEqual(base.slice(0, 2));
    for (let i = 2; i < 6; i++) expect(c[i]).not.toBe(base[i]);

    const dropped = run([...leaves.slice(0, 3), ...leaves.slice(4)]);
    for (let i = 3; i < 5; i++) expect(dropped[i]).not.toBe(base[i + 1]);

    const swapped = run([leaves[0]!, leaves[2]!, leaves[1]!, ...leaves.slice(3)]);
    for (let i = 1; i < 6; i++) expect(swapped[i]).not.toBe(base[i]);

    // a different key gives an unrelated chain
    let mac = CHAIN_GENESIS;
    const other = leaves.map((l) => (mac = chainNext(Buffer.from('x'.repeat(32)), mac, l)).toString('hex'));
    for (let i = 0; i < 6; i++) expect(other[i]).not.toBe(base[i]);
  });

  it('refuses a previous MAC that is not 32 bytes', () => {
    for (const len of [0, 31, 33, 64]) {
      expect(() => chainNext(Buffer.from('key'), Buffer.alloc(len), Buffer.alloc(32))).toThrow(SealtrailError);
    }
  });

  it('does not mutate the genesis buffer', () => {
    chainNext(Buffer.from('key'), CHAIN_GENESIS, Buffer.alloc(32, 7));
    expect(CHAIN_GENESIS.equals(Buffer.alloc(32))).toBe(true);
  });
});
