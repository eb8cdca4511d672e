import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCheckpoint, originForStream } from '../../src/core/checkpoint.js';
import { leafHash, rootFromLeafHashes } from '../../src/core/merkle.js';
import { signNote } from '../../src/core/note.js';
import { readHmacKey, readSigningKey } from '../../src/keyfiles.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET } from '../../src/sidecar/redact/index.js';
import { runCli } from '../helpers/procs.js';

/**
 * `sealtrail verify` tells "no verifier key for this stream" (exit 2,
 * naming the key NAME+HASH it needs) from "the signature does not verify"
 * (exit 1), on a real sidecar buffer signed with a key from `sealtrail
 * keygen`, run as a real process.
 */
const STREAM = 'pod-a-stream';
let tmp: string;
let db: string;
/** the signer's key id, NAME+HASH, as its .vkey file begins */
let keyId: string;

const at = (...p: string[]): string => join(tmp, ...p);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sealtrail-verify-keys-'));
  expect((await runCli(['keygen', '--name', 'pod-a', '--out', at('keys'), '--hmac'])).code).toBe(0);
  // a stranger's key, and another key under the same name: neither signed anything here
  expect((await runCli(['keygen', '--name', 'other', '--out', at('other')])).code).toBe(0);
  expect((await runCli(['keygen', '--name', 'pod-a', '--out', at('same-name')])).code).toBe(0);
  const vkey = readFileSync(at('keys', 'pod-a.vkey'), 'utf8').trim();
  keyId = vkey.split('+').slice(0, 2).join('+');

  db = at('buffer.db');
  const buffer = AuditBuffer.open(db, { newStreamId: () => STREAM });
  try {
    const { signer } = readSigningKey(at('keys', 'pod-a.skey'));
    const ingest = new Ingest(buffer, { hmacKey: readHmacKey(at('keys', 'hmac.key')), keyId: 'k1', ruleset: () => EMPTY_RULESET });
    let offset = 0;
    const lines = Array.from({ length: 9 }, (_, i) => {
      const text = JSON.stringify({ event_type: 'tool_invoked', details: { i } });
      const line = { offset, length: text.length + 1, text };
      offset += line.length;
      return line;
    });
    ingest.ingest({ source: 's', path: '/p', fileKey: 'k', lines });
    while (buffer.seal(signer, 4, 1e9)) {
      /* three batches: 4 + 4 + 1 */
    }
  } finally {
    buffer.close();
  }
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the buffer with its append-only triggers dropped and `sql` applied. */
function tampered(name: string, sql: (d: Database.Database) => void): string {
  const copy = at(name);
  copyFileSync(db, copy);
  const d = new Database(copy);
  for (const t of d.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as { name: string }[]) d.exec(`DROP TRIGGER ${t.name}`);
  sql(d);
  d.close();
  return copy;
}

describe('sealtrail verify and verifier keys', () => {
  it('exit 0 with the signer\'s verifier key, by --vkey and by --keys', async () => {
    const byFile = await runCli(['verify', '--db', db, '--vkey', at('keys', 'pod-a.vkey')]);
    expect([byFile.code, byFile.stderr]).toEqual([0, '']);
    expect(byFile.stdout).toMatch(/ok {4}stream pod-a-stream: 9 records, 3 signed checkpoints/);
    const byDir = await runCli(['verify', '--db', db, '--keys', at('keys')]);
    expect(byDir.code).toBe(0);
    expect(byDir.stdout).toMatch(/HMAC chain checked/);
  });

  it('exit 2 naming the key it needs when no given key signed the checkpoints', async () => {
    for (const args of [
      ['--vkey', at('other', 'other.vkey')],
      ['--keys', at('other')],
      // same name, another key: C2SP names a key by name and hash
      ['--vkey', at('same-name', 'pod-a.vkey')],
    ]) {
      const r = await runCli(['verify', '--db', db, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toMatch(new RegExp(`FAIL  stream ${STREAM}: key_unknown: checkpoint of batch \\d+: signed by ${keyId.replace('+', '\\+')}`));
      expect(r.stderr).toBe(
        `verification INCOMPLETE: stream ${STREAM}: no verifier key for ${keyId}; pass --vkey FILE (the signer's NAME.vkey) or --keys DIR holding it\n`,
      );
      expect(r.stderr).not.toMatch(/FAILED/);
    }
  });

  it('exit 1 when a checkpoint signed by the given key does not verify', async () => {
    const copy = tampered('bad-signature.db', (d) => {
      const row = d.prepare('SELECT batch, checkpoint FROM batches ORDER BY batch LIMIT 1').get() as { batch: number; checkpoint: string };
      // the same signer line (name, key hash), one signature byte changed
      const lines = row.checkpoint.split('\n');
      const i = lines.findIndex((l) => l.startsWith('\u2014 '));
      const [dash, name, b64] = lines[i]!.split(' ');
      const blob = Buffer.from(b64!, 'base64');
      blob.writeUInt8(blob.readUInt8(blob.length - 1) ^ 0x01, blob.length - 1);
      lines[i] = `${dash} ${name} ${blob.toString('base64')}`;
      d.prepare('UPDATE batches SET checkpoint = ? WHERE batch = ?').run(lines.join('\n'), row.batch);
    });
    const r = await runCli(['verify', '--db', copy, '--vkey', at('keys', 'pod-a.vkey')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/checkpoint_signature: .*note_invalid_signature/);
    expect(r.stderr).toMatch(new RegExp(`^verification FAILED: stream ${STREAM}: checkpoint of batch \\d+: signature does not verify`));
    // and without the key it is still only the key that is missing: nothing was checked
    expect((await runCli(['verify', '--db', copy, '--vkey', at('other', 'other.vkey')])).code).toBe(2);
  });

  it('exit 1, not 2, when one stream fails and another only lacks its key', async () => {
    const copy = tampered('bad-record.db', (d) => {
      d.prepare("UPDATE records SET canonical = replace(canonical, 'tool_invoked', 'tool_blocked') WHERE seq = 2").run();
    });
    // an auditor-held checkpoint of another stream, signed by a key not given
    const other = 'another-stream';
    const { signer } = readSigningKey(at('other', 'other.skey'));
    const leaf = leafHash(Buffer.from('{}'));
    const note = signNote(formatCheckpoint({ origin: originForStream(other), size: 1, root: rootFromLeafHashes([leaf]), extensions: [] }), [signer]);
    mkdirSync(at('held'), { recursive: true });
    writeFileSync(at('held', 'other.checkpoint'), note);
    const r = await runCli(['verify', '--db', copy, '--vkey', at('keys', 'pod-a.vkey'), '--checkpoint', at('held', 'other.checkpoint')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL  stream another-stream: key_unknown: .*signed by other\+[0-9a-f]{8}/);
    expect(r.stderr).toMatch(new RegExp(`^verification FAILED: stream ${STREAM} seq 2: `));
    // the same held checkpoint beside intact evidence: only a key is missing
    const incomplete = await runCli(['verify', '--db', db, '--vkey', at('keys', 'pod-a.vkey'), '--checkpoint', at('held', 'other.checkpoint')]);
    expect(incomplete.code).toBe(2);
    expect(incomplete.stderr).toMatch(/^verification INCOMPLETE: stream another-stream: no verifier key for other\+[0-9a-f]{8};/);
  });
});
