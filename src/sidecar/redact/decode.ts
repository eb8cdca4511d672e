/**
 * The encodings redaction looks through (docs/redaction.md, `decode:`):
 * NFKC normalisation (full-width digits and the like), percent-encoding and
 * base64 / base64url runs. Everything here is linear in the input and
 * allocates only when there is something to decode; the common case (ASCII
 * text without "%" escapes or long alphabet runs) costs one pass or less.
 */
import { isUtf8 } from 'node:buffer';
import type { DecodeSettings } from './rules.js';

/** A base64 run must be at least this long to be decoded. */
export const MIN_BASE64_RUN = 16;
/** Base64 inside decoded base64 is followed this many levels deep. */
export const MAX_DECODE_NESTING = 2;
/** "%2540" is "%40" after one round and "@" after two; stop after this many. */
const MAX_PERCENT_ROUNDS = 3;

/** 1 for characters of the base64 and base64url alphabets (both accepted, as Buffer.from(s, 'base64') does). */
const B64 = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') B64[c.charCodeAt(0)] = 1;
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

export function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}

export function hasPercentEscape(s: string): boolean {
  for (let i = s.indexOf('%'); i !== -1 && i + 2 < s.length; i = s.indexOf('%', i + 1)) {
    if (hexAt(s, i + 1) >= 0 && hexAt(s, i + 2) >= 0) return true;
  }
  return false;
}

function hexAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? HEX[c]! : -1;
}

/**
 * One round of percent-decoding. Runs of %XX escapes become bytes, decoded
 * as UTF-8; an escape whose byte is not part of a valid UTF-8 sequence, and
 * any "%" not followed by two hex digits, is left as it is. "+" stays "+".
 */
export function percentDecodeOnce(s: string): string {
  let i = s.indexOf('%');
  if (i === -1) return s;
  let out = '';
  let last = 0;
  const bytes: number[] = [];
  while (i !== -1) {
    let j = i;
    bytes.length = 0;
    while (j + 2 < s.length && s.charCodeAt(j) === 0x25) {
      const hi = hexAt(s, j + 1);
      const lo = hexAt(s, j + 2);
      if (hi < 0 || lo < 0) break;
      bytes.push(hi * 16 + lo);
      j += 3;
    }
    if (bytes.length === 0) {
      i = s.indexOf('%', i + 1);
      continue;
    }
    out += s.slice(last, i) + decodeEscapedBytes(bytes, s, i);
    last = j;
    i = s.indexOf('%', j);
  }
  return out + s.slice(last);
}

/** UTF-8 decode of escaped bytes; a byte that starts no valid sequence keeps its "%XX" text from `s` at `at`. */
function decodeEscapedBytes(b: readonly number[], s: string, at: number): string {
  let out = '';
  let k = 0;
  while (k < b.length) {
    const c = b[k]!;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      k++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    let ok = n > 0 && k + n < b.length;
    let cp = n === 1 ? c & 0x1f : n === 2 ? c & 0x0f : c & 0x07;
    if (ok) {
      // Second-byte ranges that rule out overlong forms, surrogates and code points above U+10FFFF.
      const b1 = b[k + 1]!;
      const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
      const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi) ok = false;
      for (let m = 1; ok && m <= n; m++) {
        const cc = b[k + m]!;
        if ((cc & 0xc0) !== 0x80) ok = false;
        else cp = (cp << 6) | (cc & 0x3f);
      }
    }
    if (ok) {
      out += String.fromCodePoint(cp);
      k += n + 1;
    } else {
      out += s.slice(at + 3 * k, at + 3 * k + 3);
      k++;
    }
  }
  return out;
}

/**
 * The form rules are matched on first: NFKC-normalised and percent-decoded
 * (repeatedly, for double encoding), as `decode:` allows. Returns `s` itself
 * when nothing applies.
 */
export function canonicalText(s: string, d: DecodeSettings, ascii = false): string {
  let t = s;
  for (let round = 0; round < MAX_PERCENT_ROUNDS; round++) {
    // `ascii`: the caller knows `s` is ASCII; decoded text may not be.
    const n = d.nfkc && !(ascii && round === 0) && hasNonAscii(t) ? t.normalize('NFKC') : t;
    const p = d.percent && hasPercentEscape(n) ? percentDecodeOnce(n) : n;
    if (p === t) break;
    t = p;
  }
  // Percent-decoding can produce characters NFKC maps (%EF%BC%91 is "１").
  return d.nfkc && t !== s && hasNonAscii(t) ? t.normalize('NFKC') : t;
}

/**
 * Candidate base64 runs in `s`, as [start, end) pairs: maximal stretches of
 * the base64 / base64url alphabet of at least MIN_BASE64_RUN characters,
 * with up to two "=" of padding; for a stretch that holds "/" (a path?),
 * also each "/"-separated piece of that length. Pieces follow their stretch.
 */
export function base64Candidates(s: string): number[] {
  const out: number[] = [];
  const n = s.length;
  const isB64 = (c: number): boolean => c < 128 && B64[c] === 1;
  let i = 0;
  // i is always the first position after a non-alphabet character (or 0), so
  // a window of MIN_BASE64_RUN alphabet characters from i starts a maximal run.
  // Testing the window's last character first skips most text unread.
  while (i + MIN_BASE64_RUN <= n) {
    const j = i + MIN_BASE64_RUN - 1;
    if (!isB64(s.charCodeAt(j))) {
      i = j + 1;
      continue;
    }
    let k = j - 1;
    while (k >= i && isB64(s.charCodeAt(k))) k--;
    if (k >= i) {
      i = k + 1;
      continue;
    }
    const start = i;
    let stop = j + 1;
    while (stop < n && isB64(s.charCodeAt(stop))) stop++;
    let end = stop;
    if (s.charCodeAt(end) === 0x3d) end++;
    if (s.charCodeAt(end) === 0x3d) end++;
    out.push(start, end);
    const slash = s.indexOf('/', start);
    if (slash !== -1 && slash < stop) {
      let p = start;
      for (let q = start; q <= stop; q++) {
        if (q === stop || s.charCodeAt(q) === 0x2f) {
          if (q - p >= MIN_BASE64_RUN && !(p === start && q === stop)) out.push(p, q === stop ? end : q);
          p = q + 1;
        }
      }
    }
    i = end;
  }
  return out;
}

const NOT_TEXT_CACHE_MAX = 2048;
const NOT_TEXT_CACHE_MAX_RUN = 256;
/**
 * Runs known not to decode to text. Short runs (ids, names) repeat from
 * record to record. Only negative answers are kept: decoded text may be
 * PII, and none of it is held past the call.
 */
const notText = new Set<string>();

/** The run decoded, when its bytes are valid UTF-8 text; otherwise null. */
export function decodeBase64Run(run: string): string | null {
  const cacheable = run.length <= NOT_TEXT_CACHE_MAX_RUN;
  if (cacheable && notText.has(run)) return null;
  const buf = Buffer.from(run, 'base64');
  if (buf.length > 0 && isUtf8(buf)) return buf.toString('utf8');
  if (cacheable) {
    if (notText.size >= NOT_TEXT_CACHE_MAX) notText.clear();
    notText.add(run);
  }
  return null;
}

/**
 * Every text a rule must be tried on for `s` to be redacted correctly,
 * other than `s` itself: its canonical form, and the decoded base64 runs of
 * both (recursively, to MAX_DECODE_NESTING levels). The redaction of one
 * string (engine.ts) looks at no text outside this set, so a record whose
 * strings and views match nothing needs no further work.
 *
 * `ascii`: the caller knows `s` is ASCII (it skips one scan).
 */
export function deriveViews(s: string, d: DecodeSettings, out: string[], ascii = false, depth = 0): void {
  const t = canonicalText(s, d, ascii);
  if (t !== s) out.push(t);
  if (!d.base64 || depth >= MAX_DECODE_NESTING) return;
  addRuns(s, d, out, depth);
  if (t !== s) addRuns(t, d, out, depth);
}

function addRuns(x: string, d: DecodeSettings, out: string[], depth: number): void {
  if (x.length < MIN_BASE64_RUN) return;
  const c = base64Candidates(x);
  for (let k = 0; k < c.length; k += 2) {
    const decoded = decodeBase64Run(x.slice(c[k], c[k + 1]));
    if (decoded === null) continue;
    out.push(decoded);
    deriveViews(decoded, d, out, false, depth + 1);
  }
}
