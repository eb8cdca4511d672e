import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../core/checkpoint.js';
import { BufferError, ConfigError, SealtrailError } from '../core/errors.js';
import { parseNote } from '../core/note.js';
import { fileError } from '../fs/file-errors.js';
import { readFileChecked } from '../fs/read-file.js';
import { HMAC_KEY_FILE, readHmacKey } from '../keyfiles.js';
import { formatFailure, verifyBundle } from '../evidence/verify.js';
import { openEvidenceDb, type StreamEvidence } from '../verify/from-db.js';
import { fetchEvidence, type RemoteStreamEvidence } from '../verify/from-url.js';
import { formatReport, verifyStream, verifyStreamAsync, type StreamReport, type VerifyKeys } from '../verify/verify-stream.js';
import { TLS_ARG_SPEC, useCollectorTls } from './collector-tls.js';
import { resolveToken } from './filters.js';
import { keysDirOf, loadVerifierKeys, NO_VERIFIER_KEYS } from './keys.js';
import { EXIT_FAIL, EXIT_KEY_MISSING, EXIT_OK, parse, UsageError } from './usage.js';

function loadKeys(keysDir: string | undefined, vkeyFiles: string[], hmacSpecs: string[]): VerifyKeys {
  const verifiers = loadVerifierKeys(keysDir, vkeyFiles).map((k) => k.verifier);
  if (verifiers.length === 0) throw new UsageError(NO_VERIFIER_KEYS);
  const hmac = new Map<string, Buffer>();
  const dir = keysDirOf(keysDir, vkeyFiles);
  if (dir !== undefined && hmacSpecs.length === 0 && existsSync(join(dir, HMAC_KEY_FILE))) {
    try {
      hmac.set('k1', readHmacKey(join(dir, HMAC_KEY_FILE), `HMAC key file (in --keys ${dir})`));
    } catch (err) {
      // An auditor may hold the verifier keys but not the secret beside them.
      if (!(err instanceof ConfigError)) throw err;
      throw new ConfigError(err.code, `${err.message}; to verify signatures and proofs without the HMAC chain, pass --vkey FILE instead of --keys`, {}, {
        cause: err,
      });
    }
  }
  for (const spec of hmacSpecs) {
    const i = spec.lastIndexOf(':');
    const [file, id] = i > 0 ? [spec.slice(0, i), spec.slice(i + 1)] : [spec, 'k1'];
    hmac.set(id, readHmacKey(file, '--hmac-key'));
  }
  return { verifiers, hmac };
}

/** A signed checkpoint is a few hundred bytes; with many cosignatures still far below this. */
const MAX_CHECKPOINT_FILE = 1024 * 1024;

/** Externally held checkpoints (an auditor's copy) are checked against the evidence too. */
function loadCheckpointFiles(files: string[]): Map<string, { note: string; label: string }[]> {
  const byOrigin = new Map<string, { note: string; label: string }[]>();
  for (const f of files) {
    const note = readFileChecked(f, { what: '--checkpoint', maxBytes: MAX_CHECKPOINT_FILE }).toString('utf8');
    try {
      const origin = parseCheckpoint(parseNote(note).text).origin;
      const list = byOrigin.get(origin) ?? [];
      list.push({ note, label: `checkpoint file ${f}` });
      byOrigin.set(origin, list);
    } catch (err) {
      throw new UsageError(`--checkpoint ${f}: not a signed checkpoint (${(err as Error).message})`);
    }
  }
  return byOrigin;
}

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    db: { type: 'string' },
    url: { type: 'string' },
    keys: { type: 'string' },
    vkey: { type: 'string', multiple: true, default: [] },
    'hmac-key': { type: 'string', multiple: true, default: [] },
    checkpoint: { type: 'string', multiple: true, default: [] },
    token: { type: 'string' },
    bundle: { type: 'string' },
    ...TLS_ARG_SPEC,
  });
  useCollectorTls(values, values.url);
  if (values.bundle !== undefined) {
    if (values.db !== undefined || values.url !== undefined) throw new UsageError('verify --bundle takes neither --db nor --url');
    return bundleCommand(values.bundle, values.keys, values.vkey!);
  }
  if ((values.db === undefined) === (values.url === undefined)) throw new UsageError('verify needs exactly one of --db FILE or --url URL');
  const keys = loadKeys(values.keys, values.vkey!, values['hmac-key']!);
  const extra = loadCheckpointFiles(values.checkpoint!);

  let streams: Iterable<StreamEvidence> | AsyncIterable<RemoteStreamEvidence>;
  let close = (): void => {};
  if (values.db !== undefined) {
    if (!existsSync(values.db)) throw new UsageError(`--db ${values.db}: no such file`);
    let ev;
    try {
      ev = openEvidenceDb(values.db);
    } catch (err) {
      throw dbError(values.db, err);
    }
    streams = ev.streams;
    close = ev.close;
  } else {
    streams = fetchEvidence(values.url!, resolveToken(values.token, 'verify --url'));
  }
  const reports: StreamReport[] = [];
  const report = (r: StreamReport): void => {
    reports.push(r);
    process.stdout.write(`${formatReport(r)}\n`);
  };
  try {
    const seen = new Set<string>();
    // A database is read synchronously; a live collector page by page as records are checked.
    for await (const s of streams) {
      seen.add(`sealtrail/${s.stream}`);
      const cps = [...s.checkpoints, ...(extra.get(`sealtrail/${s.stream}`) ?? [])];
      report(isRemote(s) ? await verifyStreamAsync(s.stream, s.records, cps, keys) : verifyStream(s.stream, s.records, cps, keys, s.base));
    }
    for (const [origin, list] of extra) {
      if (!seen.has(origin)) report(verifyStream(origin.replace(/^sealtrail\//, ''), [], list, keys));
    }
  } catch (err) {
    throw values.db === undefined ? err : dbError(values.db, err);
  } finally {
    close();
  }
  if (reports.length === 0) process.stdout.write('no streams found\n');
  return conclude(reports);
}

/**
 * Exit 1 when evidence fails (first failure named); else exit 2 when a
 * stream could not be checked because its checkpoints are signed by a key
 * not given (each such stream named with the key ids it needs), so a script
 * can tell "tampered" from "give me the key"; else 0.
 */
function conclude(reports: readonly StreamReport[]): number {
  const failed = reports.find((r) => !r.ok && r.failure!.code !== 'key_unknown');
  if (failed) {
    const f = failed.failure!;
    process.stderr.write(`verification FAILED: stream ${failed.stream}${f.seq === undefined ? '' : ` seq ${f.seq}`}: ${f.reason}\n`);
    return EXIT_FAIL;
  }
  const keyless = reports.filter((r) => !r.ok);
  for (const r of keyless) {
    const needed = r.failure!.needed_keys ?? [];
    process.stderr.write(
      `verification INCOMPLETE: stream ${r.stream}: no verifier key for ${needed.join(', ')}; ` +
        `pass --vkey FILE (the signer's NAME.vkey) or --keys DIR holding it\n`,
    );
  }
  if (keyless.length > 0) return EXIT_KEY_MISSING;
  process.stdout.write(`verified ${reports.length} stream(s), ${reports.reduce((n, r) => n + r.records, 0)} records\n`);
  return EXIT_OK;
}

/**
 * verify --bundle DIR: offline, no collector. With --keys/--vkey the
 * checkpoints must verify with those (pinned) keys; without, with the keys in
 * the bundle, which proves integrity but not who signed.
 */
function bundleCommand(dir: string, keysDir: string | undefined, vkeyFiles: string[]): number {
  if (!existsSync(dir)) throw new UsageError(`--bundle ${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--bundle ${dir}: not a directory (name the directory export --bundle wrote)`);
  try {
    readdirSync(dir);
  } catch (err) {
    // unreadable is a problem with the path, not a verification failure of the evidence
    throw fileError(err, dir, '--bundle', 'list');
  }
  const pinned = keysDir !== undefined || vkeyFiles.length > 0;
  const trusted = pinned ? loadKeys(keysDir, vkeyFiles, []).verifiers : undefined;
  const r = verifyBundle(dir, trusted ? { trusted } : {});
  if (!r.ok) {
    process.stderr.write(`verification FAILED: bundle ${dir}: ${formatFailure(r.failure)}\n`);
    return EXIT_FAIL;
  }
  process.stdout.write(
    `bundle ${dir}: ok: ${r.records} records in ${r.streams.length} stream(s), ${r.checkpoints} checkpoints, ` +
      `${r.consistency} consistency proofs, keys ${r.keySource === 'trusted' ? 'given on the command line' : 'from the bundle'}\n`,
  );
  if (!pinned) process.stderr.write('note: checkpoints were checked with the keys inside the bundle; pass --keys DIR or --vkey FILE to pin them\n');
  return EXIT_OK;
}

/**
 * A damaged or foreign database (not SQLite, wrong column types, missing rows)
 * is named as such, not reported as an internal error with a stack.
 */
function dbError(path: string, err: unknown): unknown {
  if (err instanceof SealtrailError || !(err instanceof Error)) return err;
  return new BufferError('db_unreadable', `--db ${path}: evidence cannot be read (${err.name}: ${err.message})`, { cause: err });
}

function isRemote(s: StreamEvidence | RemoteStreamEvidence): s is RemoteStreamEvidence {
  return Symbol.asyncIterator in s.records;
}
