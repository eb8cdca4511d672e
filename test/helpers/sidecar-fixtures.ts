import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canonicalize } from '../../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../../src/core/chain.js';
import { leafHash } from '../../src/core/merkle.js';
import { generateKeyPair, parseSignerKey, parseVerifierKey, type NoteSigner, type NoteVerifier } from '../../src/core/note.js';
import { uuidv7 } from '../../src/core/uuid.js';
import type { AuditBuffer, PreparedRecord } from '../../src/sidecar/buffer/buffer.js';

/**
 * Shared fixtures for the sidecar tests: temp dirs, prepared (chained) records
 * built with the real core crypto, signing keys, and raw file scanning.
 */

export const HMAC_KEY = Buffer.alloc(32, 0x5a);
export const KEY_ID = 'k1';

export interface TempDir {
  dir: string;
  file(name: string): string;
  cleanup(): void;
}

export function tempDir(prefix = 'sealtrail-test-'): TempDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Keys {
  skey: string;
  vkey: string;
  signer: NoteSigner;
  verifier: NoteVerifier;
}

export function makeKeys(name = 'sealtrail-test'): Keys {
  const { skey, vkey } = generateKeyPair(name);
  return { skey, vkey, signer: parseSignerKey(skey), verifier: parseVerifierKey(vkey) };
}

export function recordObject(stream: string, seq: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const t = new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString();
  return {
    time: t,
    event_type: 'tool_invoked',
    tool: { name: 'search', arguments: { q: `query ${seq}` } },
    ...extra,
    id: uuidv7(Date.UTC(2026, 0, 1) + seq),
    stream,
    seq,
    received_at: t,
    source: 'test',
    redaction: { ruleset: 'none', hits: {} },
  };
}

export interface PrepareOptions {
  stream: string;
  startSeq: number;
  prevMac: Buffer;
  count: number;
  hmacKey?: Buffer;
  keyId?: string;
  /** extra fields merged into record seq (e.g. padding) */
  extra?: (seq: number) => Record<string, unknown>;
}

/** Records exactly as Ingest would prepare them: canonical text, leaf hash, chained MAC. */
export function prepareRecords(o: PrepareOptions): { records: PreparedRecord[]; lastMac: Buffer } {
  const key = o.hmacKey ?? HMAC_KEY;
  const records: PreparedRecord[] = [];
  let prev = o.prevMac;
  for (let i = 0; i < o.count; i++) {
    const seq = o.startSeq + i;
    const obj = recordObject(o.stream, seq, o.extra?.(seq) ?? {});
    const canonical = canonicalize(obj);
    const leaf = leafHash(Buffer.from(canonical, 'utf8'));
    const mac = chainNext(key, prev, leaf);
    records.push({ seq, id: obj.id as string, canonical, leaf, mac, keyId: o.keyId ?? KEY_ID, receivedAt: obj.received_at as string });
    prev = mac;
  }
  return { records, lastMac: prev };
}

/** Prepares `count` records that continue the buffer's chain cursor. */
export function nextRecords(buffer: AuditBuffer, count: number, extra?: (seq: number) => Record<string, unknown>): PreparedRecord[] {
  const c = buffer.chainCursor();
  const opts: PrepareOptions = { stream: buffer.stream, startSeq: c.nextSeq, prevMac: c.prevMac, count };
  if (extra) opts.extra = extra;
  return prepareRecords(opts).records;
}

/** Recomputes the HMAC chain over rows ordered by seq, from genesis or a given MAC. */
export function chainOk(rows: readonly { leaf: Buffer; mac: Buffer }[], key = HMAC_KEY, from: Buffer = CHAIN_GENESIS): boolean {
  let prev = from;
  for (const r of rows) {
    if (!chainNext(key, prev, r.leaf).equals(r.mac)) return false;
    prev = r.mac;
  }
  return true;
}

/** Raw bytes of a SQLite file and its -wal / -shm / -journal companions, concatenated. */
export function sqliteFileBytes(dbPath: string): Buffer {
  const parts: Buffer[] = [];
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    const p = dbPath + suffix;
    if (fs.existsSync(p)) parts.push(fs.readFileSync(p));
  }
  return Buffer.concat(parts);
}

export function fileBytesOf(dbPath: string, suffix: '' | '-wal'): Buffer {
  const p = dbPath + suffix;
  return fs.existsSync(p) ? fs.readFileSync(p) : Buffer.alloc(0);
}

/** True when `needle` occurs in `hay` as UTF-8 or as UTF-16LE/BE bytes. */
export function containsText(hay: Buffer, needle: string): boolean {
  if (hay.includes(Buffer.from(needle, 'utf8'))) return true;
  if (hay.includes(Buffer.from(needle, 'utf16le'))) return true;
  const be = Buffer.from(needle, 'utf16le');
  be.swap16();
  return hay.includes(be);
}

