import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import * as root from '../../src/index.js';
import { formatCheckpoint } from '../../src/core/checkpoint.js';
import { inclusionProof } from '../../src/core/merkle.js';
import { generateKeyPair, parseSignerKey, signNote } from '../../src/core/note.js';
import { bareOffences, sourceSpecifiers, tsTarget, walkImports, type ImportGraph } from '../helpers/import-graph.js';

/**
 * `import … from 'sealtrail'` (src/index.ts) offers the verifiers, the
 * primitives they use, the record and checkpoint types and the AuditStore
 * interface, and loading it loads no native addon and nothing of the
 * sidecar, the collector or the SQLite opener. Held three ways: the
 * exports exist and work; the run-time import graph from src/index.ts (each
 * module as tsc emits it, so type-only imports are gone) reaches only
 * src/core, src/evidence, src/verify and node: builtins; and this very
 * process, which imported src/index.ts, made no process.dlopen call and
 * loaded none of the forbidden packages.
 */

// Installed before any import of this file runs (vi.hoisted), so it sees every addon src/index.ts could load.
const dlopened = vi.hoisted(() => {
  const seen: string[] = [];
  const original = process.dlopen.bind(process);
  process.dlopen = ((module: unknown, filename: string, ...rest: unknown[]) => {
    seen.push(filename);
    return (original as (...a: unknown[]) => unknown)(module, filename, ...rest);
  }) as typeof process.dlopen;
  return seen;
});

// Not from test/helpers: those load undici and more, which would blur what src/index.ts loads.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FORBIDDEN_PACKAGES = ['better-sqlite3', 're2', 'pg', 'pg-copy-streams', 'fastify', 'pino', 'undici'];
const FORBIDDEN_DIRS = ['src/sidecar/', 'src/collector/', 'src/sqlite/'];
const ALLOWED_DIRS = ['src/core/', 'src/evidence/', 'src/verify/'];

/** What a module imports once compiled: tsc drops type-only imports and imports used only as types. */
function runtimeSpecifiers(file: string): string[] {
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  }).outputText;
  return ts.preProcessFile(js, true, true).importedFiles.map((f) => f.fileName);
}

function walk(entry: string, specifiers: (file: string) => string[]): ImportGraph {
  return walkImports(entry, specifiers, tsTarget);
}

function offences(g: ImportGraph): string[] {
  const out = bareOffences(g, FORBIDDEN_PACKAGES);
  for (const f of g.files.keys()) {
    if (f === 'src/index.ts') continue;
    if (FORBIDDEN_DIRS.some((d) => f.startsWith(d))) out.push(`${f} (forbidden directory)`);
    else if (!ALLOWED_DIRS.some((d) => f.startsWith(d))) out.push(`${f} (outside ${ALLOWED_DIRS.join(', ')})`);
  }
  return out;
}

/** A stream of `n` canonical records signed up to a checkpoint, and the proof item the collector would give for `seq`. */
function signedStream(stream: string, n: number, seq: number): { vkey: string; item: Record<string, any> } {
  const { skey, vkey } = generateKeyPair('root-test');
  const records = Array.from({ length: n }, (_, i) => ({ event_type: 'tool_invoked', id: `r${i}`, seq: i, stream }));
  const leaves = records.map((r) => root.leafHash(Buffer.from(root.canonicalize(r), 'utf8')));
  const proof = inclusionProof(leaves, seq);
  const size = n;
  const rootHash = mth(leaves);
  const note = signNote(formatCheckpoint({ origin: root.originForStream(stream), size, root: rootHash, extensions: [] }), [parseSignerKey(skey)]);
  return {
    vkey,
    item: {
      record: records[seq],
      stream,
      seq,
      batch: 0,
      leaf_hash: leaves[seq]!.toString('hex'),
      mac: '00'.repeat(32),
      key_id: 'k1',
      proof: { tree_size: size, leaf_index: seq, hashes: proof.map((h) => h.toString('base64')), checkpoint: note },
    },
  };
}

/** RFC 9162 MTH, written out here rather than borrowed from the code under test. */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(mth(leaves.slice(0, k)))
    .update(mth(leaves.slice(k)))
    .digest();
}

describe("the root export ('sealtrail')", () => {
  it('exports the verifiers, the primitives, the error classes and the record constants', () => {
    const functions = [
      'verifyBundle',
      'formatFailure',
      'verifyRecordProof',
      'verifyConsistencyProof',
      'verifyInclusion',
      'verifyConsistency',
      'leafHash',
      'canonicalize',
      'parseCheckpoint',
      'originForStream',
      'openNote',
      'parseVerifierKey',
    ];
    for (const f of functions) expect(typeof (root as Record<string, unknown>)[f], f).toBe('function');
    for (const c of [root.ProofCheckError, root.NoteError, root.ProofError, root.CanonicalError]) {
      expect(Object.getPrototypeOf(c.prototype)).toBe(root.SealtrailError.prototype);
    }
    expect(root.ACTOR_TYPES).toContain('agent');
    expect(root.OUTCOMES).toContain('success');
    expect(root.HASH_SIZE).toBe(32);
    // Nothing beyond the documented surface leaks in (e.g. the exporter or a store class).
    expect(Object.keys(root).sort()).toEqual(
      [...functions, 'ProofCheckError', 'SealtrailError', 'NoteError', 'ProofError', 'CanonicalError', 'ACTOR_TYPES', 'OUTCOMES', 'HASH_SIZE'].sort(),
    );
  });

  it('the primitives work: canonical JSON, leaf hash, inclusion and consistency of a two-leaf tree', () => {
    expect(root.canonicalize({ b: 1, a: [1, 'x', { d: null, c: true }] })).toBe('{"a":[1,"x",{"c":true,"d":null}],"b":1}');
    const l0 = root.leafHash(Buffer.from('a'));
    const l1 = root.leafHash(Buffer.from('b'));
    expect(l0.equals(createHash('sha256').update(Buffer.from([0, 0x61])).digest())).toBe(true);
    const r = mth([l0, l1]);
    expect(root.verifyInclusion(l0, 0, 2, [l1], r)).toBe(true);
    expect(root.verifyInclusion(l0, 1, 2, [l1], r)).toBe(false);
    expect(root.verifyConsistency(1, 2, l0, r, [l1])).toBe(true);
    expect(root.verifyConsistency(1, 2, l1, r, [l1])).toBe(false);
  });

  it('the signed-note primitives open a checkpoint with a verifier key', () => {
    const { vkey, item } = signedStream('root-s', 3, 1);
    const opened = root.openNote(item.proof.checkpoint, [root.parseVerifierKey(vkey)]);
    const cp: root.Checkpoint = root.parseCheckpoint(opened.text);
    expect([cp.origin, cp.size]).toEqual(['sealtrail/root-s', 3]);
    const other = generateKeyPair('root-test').vkey;
    expect(() => root.openNote(item.proof.checkpoint, [root.parseVerifierKey(other)])).toThrow(root.NoteError);
  });

  it('verifyRecordProof accepts a proof item and names what it proved; refuses one of another key with a typed code', () => {
    const { vkey, item } = signedStream('root-s', 5, 3);
    const r: root.RecordProofResult = root.verifyRecordProof(item, { vkeys: `${vkey}\n` });
    expect(r).toMatchObject({ ok: true, stream: 'root-s', seq: 3, treeSize: 5, leafHash: item.leaf_hash });
    expect(r.signedBy).toEqual([vkey.split('+').slice(0, 2).join('+')]);
    let err: unknown;
    try {
      root.verifyRecordProof(item, { vkeys: generateKeyPair('root-test').vkey });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(root.ProofCheckError);
    expect(err).toBeInstanceOf(root.SealtrailError);
    expect((err as root.ProofCheckError).code).toBe('checkpoint_signature_invalid');
    expect((err as root.ProofCheckError).member).toBe('proof.checkpoint');
  });

  it('verifyBundle is callable and names the first failure of a directory that is no bundle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-root-export-'));
    try {
      const r: root.BundleResult = root.verifyBundle(dir);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(root.formatFailure(r.failure)).toBe('manifest.json: missing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exports the collector's AuditStore interface, type-only, as the store backends declare it", () => {
    // Types leave no trace at run time, so the export is read from the source: a type-only re-export of the interface every backend implements.
    const source = ts.createSourceFile('index.ts', readFileSync(join(ROOT, 'src/index.ts'), 'utf8'), ts.ScriptTarget.ES2022);
    const typeExports = source.statements.filter(
      (s): s is ts.ExportDeclaration => ts.isExportDeclaration(s) && s.isTypeOnly && (s.moduleSpecifier as ts.StringLiteral | undefined)?.text === './collector/store/types.js',
    );
    const names = typeExports.flatMap((s) => (s.exportClause && ts.isNamedExports(s.exportClause) ? s.exportClause.elements.map((e) => e.name.text) : []));
    expect(names).toEqual(expect.arrayContaining(['AuditStore', 'StreamState', 'AppendBatchInput', 'RecordRow', 'CheckpointRow']));
    expect(readFileSync(join(ROOT, 'src/collector/store/types.ts'), 'utf8')).toMatch(/^export interface AuditStore \{/m);
    expect(readFileSync(join(ROOT, 'src/collector/store/sqlite.ts'), 'utf8')).toMatch(/implements AuditStore/);
    // And usable as a type through the root export (checked whenever the tests are type-checked).
    const keeps = (s: Pick<root.AuditStore, 'keepsRecords'>): boolean => s.keepsRecords;
    expect(keeps({ keepsRecords: true })).toBe(true);
  });
});

describe('what importing the root export loads', () => {
  it('run time: from src/index.ts only src/core, src/evidence, src/verify and node: builtins', () => {
    const g = walk('src/index.ts', runtimeSpecifiers);
    for (const f of ['src/verify/record-proof.ts', 'src/evidence/verify.ts', 'src/core/merkle.ts', 'src/core/note.ts']) {
      expect(g.files.has(f), f).toBe(true);
    }
    expect(offences(g)).toEqual([]);
    expect(g.bare.every(({ spec }) => isBuiltin(spec))).toBe(true);
  });

  it('the store types are reached only through type-only imports', () => {
    const withTypes = walk('src/index.ts', sourceSpecifiers);
    expect(withTypes.files.has('src/collector/store/types.ts')).toBe(true);
    expect(walk('src/index.ts', runtimeSpecifiers).files.has('src/collector/store/types.ts')).toBe(false);
  });

  it('the walk catches a forbidden import (it is not vacuous)', () => {
    const collector = offences(walk('src/collector/index.ts', runtimeSpecifiers));
    expect(collector.some((o) => o.includes('-> better-sqlite3'))).toBe(true);
    expect(collector.some((o) => o.includes('-> fastify'))).toBe(true);
    expect(collector.some((o) => o.includes('src/collector/'))).toBe(true);
    const sidecar = offences(walk('src/sidecar/sidecar.ts', runtimeSpecifiers));
    expect(sidecar.some((o) => o.includes('-> re2'))).toBe(true);
  });

  it('this process imported src/index.ts without loading a native addon or a forbidden package', () => {
    expect(typeof root.verifyRecordProof).toBe('function');
    expect(dlopened).toEqual([]);
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    const forbidden = loaded.filter((p) => FORBIDDEN_PACKAGES.some((pkg) => p.includes(`/node_modules/${pkg}/`)));
    expect(forbidden).toEqual([]);
  });
});
