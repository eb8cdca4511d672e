import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrown } from '../helpers/errors.js';
import { DEFAULT_MAX_BATCH_RECORDS, DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_WIRE_BYTES, MIN_BODY_BYTES, MIN_MAX_RECORD_BYTES } from '../../src/core/wire-limits.js';

/**
 * The config holds both ends to the wire limits: a sidecar's batches and a
 * collector's body limit are never below the size of the largest single
 * record, and a batch never holds more records than a collector takes.
 */

const SIDECAR = (extra: string): string => `sidecar:
  sources:
    - { id: app, type: file, include: [/var/log/agent/*.jsonl] }
  keys: { signing_key_file: /k/s.key, hmac_key_file: /k/hmac.key }
${extra}`;

function refused(text: string): ConfigError {
  return thrown(() => parseConfigText(text, 'limits.yaml', {}), ConfigError);
}

describe('config and the wire limits', () => {
  it('takes the minimum for ship.max_batch_bytes and collector.max_body_bytes, and refuses less, naming the field and the minimum', () => {
    const ok = parseConfigText(SIDECAR('  ship: { url: http://c:7470, max_batch_bytes: 2MiB }\n'), 'limits.yaml', {});
    expect(ok.sidecar!.ship.max_batch_bytes).toBe(MIN_BODY_BYTES);
    const s = refused(SIDECAR('  ship: { url: http://c:7470, max_batch_bytes: 1MiB }\n'));
    expect(s.message).toMatch(/ship\.max_batch_bytes/);
    expect(s.message).toMatch(/2MiB/);
    expect(s.line).toBe(5);

    const c = parseConfigText('collector:\n  max_body_bytes: 2MiB\n', 'limits.yaml', {});
    expect(c.collector!.max_body_bytes).toBe(MIN_BODY_BYTES);
    const e = refused('collector:\n  max_body_bytes: 512KiB\n');
    expect(e.message).toMatch(/max_body_bytes/);
    expect(e.message).toMatch(/2MiB/);
    expect(e.line).toBe(2);
  });

  it('bounds collector.max_record_bytes by what a sidecar accepts and by max_body_bytes, and both body sizes by 256 MiB', () => {
    expect(parseConfigText('collector: {}\n', 'limits.yaml', {}).collector!.max_record_bytes).toBe(DEFAULT_MAX_RECORD_BYTES);
    expect(parseConfigText('collector:\n  max_body_bytes: 2MiB\n', 'limits.yaml', {}).collector!.max_record_bytes).toBe(2 * 1024 * 1024);
    expect(parseConfigText('collector:\n  max_body_bytes: 64MiB\n  max_record_bytes: 32MiB\n', 'limits.yaml', {}).collector!.max_record_bytes).toBe(32 * 1024 * 1024);
    expect(refused('collector:\n  max_record_bytes: 512KiB\n').message).toMatch(/max_record_bytes/);
    expect(refused('collector:\n  max_body_bytes: 4MiB\n  max_record_bytes: 5MiB\n').message).toMatch(/max_record_bytes/);
    expect(refused('collector:\n  max_body_bytes: 512MiB\n').message).toMatch(/256MiB/);
    expect(refused(SIDECAR('  ship: { url: http://c:7470, max_batch_bytes: 300MiB }\n')).message).toMatch(/256MiB/);
    expect(MIN_MAX_RECORD_BYTES).toBe(MAX_RECORD_WIRE_BYTES);
  });

  it('keeps seal.max_records within what a collector takes in one batch', () => {
    const ok = parseConfigText(SIDECAR(`  ship: { url: http://c:7470 }\n  seal: { max_records: ${DEFAULT_MAX_BATCH_RECORDS} }\n`), 'limits.yaml', {});
    expect(ok.sidecar!.seal.max_records).toBe(DEFAULT_MAX_BATCH_RECORDS);
    const e = refused(SIDECAR(`  ship: { url: http://c:7470 }\n  seal: { max_records: ${DEFAULT_MAX_BATCH_RECORDS + 1} }\n`));
    expect(e.message).toMatch(/max_records/);
  });
});
