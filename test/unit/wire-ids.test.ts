import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/index.js';
import { CONFIG_KEY_ID, CONFIG_STREAM_ID, KEY_ID, STREAM_ID } from '../../src/core/wire-ids.js';
import { prng } from '../helpers/prng.js';

/**
 * An id a sidecar can be configured with must be one every collector takes:
 * otherwise every batch of the stream is refused and shipping halts at batch 0.
 */

const ALPHABET = 'aZ09._-:@+/ \u00e9*\n';

function randomId(rnd: () => number): string {
  let s = '';
  for (let n = 1 + Math.floor(rnd() * 6); n > 0; n--) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
  return s;
}

describe('configurable ids are ids a collector accepts', () => {
  const cfgStream = new RegExp(CONFIG_STREAM_ID, 'u');
  const cfgKey = new RegExp(CONFIG_KEY_ID, 'u');

  it.each(['-foo', '.', '..', '', 'a b', 'a/b', 'x'.repeat(129)])('stream id %j is refused by the config as by a collector or more strictly', (id) => {
    expect(cfgStream.test(id)).toBe(false);
  });

  it.each(['_k1', '-k', '.k', '', 'k'.repeat(65), 'k/1'])('key id %j is refused by the config', (id) => {
    expect(cfgKey.test(id)).toBe(false);
  });

  it('every random id the config takes, the wire takes', () => {
    const rnd = prng(0x1d5);
    let streams = 0;
    let keys = 0;
    for (let i = 0; i < 200_000; i++) {
      const id = randomId(rnd);
      if (cfgStream.test(id)) {
        streams++;
        expect(STREAM_ID.test(id), id).toBe(true);
      }
      if (cfgKey.test(id)) {
        keys++;
        expect(KEY_ID.test(id), id).toBe(true);
      }
    }
    expect(streams).toBeGreaterThan(1000);
    expect(keys).toBeGreaterThan(1000);
    for (const id of ['a', '_x', '.x', 'pod-1.ns_2', 'x'.repeat(128)]) expect([cfgStream.test(id), STREAM_ID.test(id)]).toEqual([true, true]);
  });

  it('the config refuses a stream id or key id a collector would refuse, naming the field', () => {
    const cfg = (stream: string, key: string): string => `sidecar:
  stream: { id: "${stream}" }
  sources: [{ id: app, type: file, include: [/x/*.jsonl] }]
  keys: { signing_key_file: /k/s, hmac_key_file: /k/h, hmac_key_id: "${key}" }
  ship: { url: "http://c:7470" }
`;
    expect(parseConfigText(cfg('pod-a', 'k1'), 'ids.yaml', {}).sidecar!.stream.id).toBe('pod-a');
    expect(() => parseConfigText(cfg('-foo', 'k1'), 'ids.yaml', {})).toThrow(/stream\.id/);
    expect(() => parseConfigText(cfg('..', 'k1'), 'ids.yaml', {})).toThrow(/stream\.id/);
    expect(() => parseConfigText(cfg('pod-a', '_k1'), 'ids.yaml', {})).toThrow(/hmac_key_id/);
  });
});
