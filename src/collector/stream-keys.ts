import { HttpError } from '../core/errors.js';
import { parseNote, parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { parseRfc3339 } from '../core/time.js';
import type { CollectorStreamKey } from './options.js';

interface Key {
  verifier: NoteVerifier;
  /** "<name>+<hash8>", as in a signature line */
  id: string;
  /** ms since the epoch; undefined: unbounded */
  notBefore: number | undefined;
  notAfter: number | undefined;
  notBeforeText: string | undefined;
  notAfterText: string | undefined;
}

interface Entry {
  match: string;
  prefix: string | undefined;
  keys: Key[];
}

/** The part of a batch key selection needs. */
export interface SignedBatchRef {
  stream: string;
  batch: number;
  checkpoint: string;
}

function instant(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseRfc3339(text);
  if (ms === undefined) throw new TypeError(`${what} must be an RFC 3339 timestamp with offset`);
  return ms;
}

/**
 * Configured checkpoint keys by stream. Keys are parsed once at start-up so
 * a bad vkey fails the collector's start, not a sidecar's upload.
 *
 * Matching: an exact entry wins over any prefix, and among prefixes the
 * longest wins, whatever the order in the config. That is what an operator
 * means by `agents-*` next to `agents-billing-*` next to `*`; "first match"
 * would let a catch-all placed early silently take over every stream.
 *
 * Rotation: an entry holds several keys, each valid in [not_before,
 * not_after) of the collector's receive time. A checkpoint is accepted if a
 * key valid now verifies it; overlapping windows let sidecars switch keys at
 * their own pace.
 */
export class StreamKeys {
  private readonly exact = new Map<string, Entry>();
  /** longest prefix first */
  private readonly prefixes: Entry[] = [];

  constructor(entries: readonly CollectorStreamKey[]) {
    entries.forEach((k, i) => {
      const star = k.match.indexOf('*');
      if (k.match.length === 0 || (star !== -1 && star !== k.match.length - 1)) {
        throw new TypeError(`streams[${i}].match: "*" is only allowed as the last character`);
      }
      if ((k.vkey === undefined) === (k.keys === undefined)) {
        throw new TypeError(`streams[${i}]: needs exactly one of "vkey" or "keys"`);
      }
      const versions = k.keys ?? [{ vkey: k.vkey! }];
      if (versions.length === 0) throw new TypeError(`streams[${i}].keys must not be empty`);
      const ids = new Set<string>();
      const keys = versions.map((v, j): Key => {
        const at = k.keys ? `streams[${i}].keys[${j}]` : `streams[${i}]`;
        const verifier = parseVerifierKey(v.vkey);
        const id = `${verifier.name}+${verifier.keyHash.toString(16).padStart(8, '0')}`;
        // openNote refuses two verifiers with one name+hash as ambiguous.
        if (ids.has(id)) throw new TypeError(`${at}: key ${id} is listed twice for this match`);
        ids.add(id);
        const notBefore = instant(v.not_before, `${at}.not_before`);
        const notAfter = instant(v.not_after, `${at}.not_after`);
        if (notBefore !== undefined && notAfter !== undefined && notBefore >= notAfter) {
          throw new TypeError(`${at}: not_before must be earlier than not_after`);
        }
        return { verifier, id, notBefore, notAfter, notBeforeText: v.not_before, notAfterText: v.not_after };
      });
      const entry: Entry = { match: k.match, prefix: star === -1 ? undefined : k.match.slice(0, -1), keys };
      if (entry.prefix === undefined) {
        if (this.exact.has(k.match)) throw new TypeError(`streams[${i}].match: duplicate "${k.match}"`);
        this.exact.set(k.match, entry);
      } else {
        if (this.prefixes.some((p) => p.prefix === entry.prefix)) throw new TypeError(`streams[${i}].match: duplicate "${k.match}"`);
        this.prefixes.push(entry);
      }
    });
    this.prefixes.sort((a, b) => b.prefix!.length - a.prefix!.length);
  }

  /** The entry that governs `stream`, if any (exact, else longest prefix). */
  private entryFor(stream: string): Entry | undefined {
    return this.exact.get(stream) ?? this.prefixes.find((e) => stream.startsWith(e.prefix!));
  }

  /** Whether some entry matches `stream` (then trust on first use never applies). */
  covers(stream: string): boolean {
    return this.entryFor(stream) !== undefined;
  }

  /**
   * Every verifier ever configured for `stream`, inside its validity period
   * or not; undefined when no entry matches. Only for telling a fork (a
   * different batch under a used number, signed by a key of the stream,
   * even one expired since) from a mere bad request: never for accepting.
   */
  anyEver(stream: string): NoteVerifier[] | undefined {
    return this.entryFor(stream)?.keys.map((k) => k.verifier);
  }

  /**
   * The verifiers that may sign `batch`'s checkpoint at `now` (ms), or
   * undefined when no entry matches its stream. When the checkpoint is
   * signed only by keys of the entry that are outside their validity period,
   * throws a 422 naming that (batch_key_expired / batch_key_not_yet_valid)
   * instead of letting it surface as a bare bad signature: the fix is a
   * config or sidecar key change, and the operator should see which.
   */
  resolve(batch: SignedBatchRef, now: number = Date.now()): NoteVerifier[] | undefined {
    const entry = this.entryFor(batch.stream);
    if (!entry) return undefined;
    const valid = (k: Key): boolean =>
      (k.notBefore === undefined || now >= k.notBefore) && (k.notAfter === undefined || now < k.notAfter);
    const current = entry.keys.filter(valid);
    let signedBy: Set<string>;
    try {
      // Cheap: the signature lines name the key (name+hash); nothing is verified here.
      signedBy = new Set(parseNote(batch.checkpoint).sigs.map((s) => `${s.name}+${s.keyHash.toString(16).padStart(8, '0')}`));
    } catch {
      return current.map((k) => k.verifier); // malformed: verification reports it
    }
    if (current.some((k) => signedBy.has(k.id))) return current.map((k) => k.verifier);
    const stale = entry.keys.find((k) => !valid(k) && signedBy.has(k.id));
    if (stale) {
      const where = `stream ${batch.stream} batch ${batch.batch}`;
      if (stale.notAfter !== undefined && now >= stale.notAfter) {
        throw new HttpError(422, 'batch_key_expired', `${where}: checkpoint key ${stale.id} expired at ${stale.notAfterText}`);
      }
      throw new HttpError(422, 'batch_key_not_yet_valid', `${where}: checkpoint key ${stale.id} is valid from ${stale.notBeforeText}`);
    }
    return current.map((k) => k.verifier);
  }
}
