import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET } from '../../src/sidecar/redact/index.js';
import { runCli } from '../helpers/procs.js';
import { HMAC_KEY, KEY_ID, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const CANARY = 'QUARANTINE-CLI-CANARY-4411';
let tmp: TempDir;
let db: string;

beforeAll(() => {
  tmp = tempDir('sealtrail-quarantine-cli-');
  db = tmp.file('buffer.db');
  const buffer = AuditBuffer.open(db, { newStreamId: () => 'q-stream' });
  const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => EMPTY_RULESET });
  const lines = [
    `{"event_type":"ok","details":{"x":"${CANARY}"}}`,
    `{"event_type":"x","time":"${CANARY}"}`,
    `{"event_type":"x","seq":"${CANARY}"}`,
    `not json ${CANARY}`,
  ];
  let offset = 0;
  const ingestLines = lines.map((text) => {
    const l = { offset, length: Buffer.byteLength(text) + 1, text };
    offset += l.length;
    return l;
  });
  // A hostile file name: a terminal must not act on its control characters.
  const path = '/var/log/agent\u001b[31m\u202e.jsonl';
  ingest.ingest({ source: 'traces', path, fileKey: '1:2', lines: ingestLines, position: { source: 'traces', key: '1:2', path, offset, fingerprint: 'fp' } });
  buffer.close();
});

afterAll(() => tmp.cleanup());

describe('sealtrail quarantine --db', () => {
  it('lists each quarantined line: reason, field, position, not reported yet, never its bytes', async () => {
    const r = await runCli(['quarantine', '--db', db]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n');
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatch(/^AT\s+SOURCE\s+REASON\s+FIELD\s+WHERE\s+REPORTED\s+MESSAGE$/);
    expect(rows[1]).toMatch(/traces\s+record_invalid\s+time\s+\/var\/log\/agent\\x1b\[31m\\u202e\.jsonl @\d+\+\d+\s+no\s+field time: not an RFC 3339 timestamp/);
    expect(rows[2]).toMatch(/record_invalid\s+seq\s/);
    expect(rows[3]).toMatch(/json_invalid\s+-\s/);
    expect(r.stdout).not.toContain(CANARY);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).not.toContain('\u202e');
  });

  it('--json gives one object per line, filters by reason and source, and --limit bounds the rows', async () => {
    const all = await runCli(['quarantine', '--db', db, '--json']);
    const objs = all.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objs.map((o) => [o.reason, o.field])).toEqual([
      ['record_invalid', 'time'],
      ['record_invalid', 'seq'],
      ['json_invalid', undefined],
    ]);
    expect(objs[0]).toMatchObject({ source: 'traces', file_key: '1:2', reported: false, length: expect.any(Number), offset: expect.any(Number) });
    const invalid = await runCli(['quarantine', '--db', db, '--json', '--reason', 'json_invalid']);
    expect(invalid.stdout.trim().split('\n')).toHaveLength(1);
    const none = await runCli(['quarantine', '--db', db, '--source', 'other']);
    expect(none.stdout).toBe('no quarantined lines\n');
    const one = await runCli(['quarantine', '--db', db, '--json', '--limit', '1']);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('reads a buffer a running sidecar holds open (read-only), and marks rows a report covered', async () => {
    const buffer = AuditBuffer.open(db, { newStreamId: () => 'q-stream' });
    try {
      buffer.db.prepare("INSERT INTO positions (source, key, path, offset, fingerprint, updated_at) VALUES ('sealtrail', 'quarantine-reported', 'quarantine', 2, '', 'now')").run();
      const r = await runCli(['quarantine', '--db', db, '--json']);
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).reported)).toEqual([true, true, false]);
    } finally {
      buffer.close();
    }
  });

  it('refuses bad flags and bad files with a clear message and no stack trace', async () => {
    const notSqlite = tmp.file('not.db');
    writeFileSync(notSqlite, 'this is not a database, it is a file of text\n'.repeat(200));
    const other = tmp.file('other.db');
    new Database(other).exec('CREATE TABLE t (x)').close();
    const cases: Array<[string[], number, RegExp]> = [
      [['quarantine'], 2, /needs --db FILE/],
      [['quarantine', '--db', tmp.file('missing.db')], 2, /missing\.db: no such file/],
      [['quarantine', '--db', tmp.dir], 2, /is a directory/],
      [['quarantine', '--db', db, '--limit', '0'], 2, /--limit 0: expected a whole number/],
      [['quarantine', '--db', db, '--limit', '1e3'], 2, /--limit 1e3/],
      [['quarantine', '--db', db, '--bogus'], 2, /bogus/],
      [['quarantine', '--db', other], 1, /\[db_unknown\].*not a sealtrail sidecar buffer/],
      [['quarantine', '--db', notSqlite], 1, /error \[/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
