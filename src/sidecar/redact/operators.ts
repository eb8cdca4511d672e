/**
 * What a match becomes (docs/redaction.md, "Operators"). Only node:crypto
 * (DESIGN invariant 5).
 */
import { createHmac } from 'node:crypto';

export type Operator =
  | { readonly kind: 'replace'; readonly text: string }
  | { readonly kind: 'mask'; readonly keepLast: number }
  | { readonly kind: 'hash'; readonly keyId: string; readonly key: Buffer; readonly perTenant: boolean }
  | { readonly kind: 'drop_field' };

/**
 * `*` for every character (code point) of `text` except the last `keepLast`.
 * A keep_last that would keep the whole match keeps nothing: a short match
 * must not come through unmasked.
 */
export function maskText(text: string, keepLast: number): string {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A surrogate pair is one character; a lone surrogate counts as one too.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    count++;
  }
  if (keepLast <= 0 || keepLast >= count) return '*'.repeat(count);
  // Walk back keepLast characters from the end.
  let cut = text.length;
  for (let k = 0; k < keepLast; k++) {
    cut--;
    const c = text.charCodeAt(cut);
    if (c >= 0xdc00 && c <= 0xdfff && cut > 0) {
      const h = text.charCodeAt(cut - 1);
      if (h >= 0xd800 && h <= 0xdbff) cut--;
    }
  }
  return '*'.repeat(count - keepLast) + text.slice(cut);
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lowercase, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * `pii:<key id>:<base32 of the first 80 bits of HMAC-SHA-256(K, text)>`; with
 * per-tenant pseudonyms the HMAC input is `tenant || 0x00 || text` (a missing
 * tenant is the empty string). Text is hashed as UTF-8.
 */
export function pseudonym(keyId: string, key: Buffer, text: string, perTenant: boolean, tenant: string | undefined): string {
  const h = createHmac('sha256', key);
  if (perTenant) h.update(`${tenant ?? ''}\u0000`, 'utf8');
  h.update(text, 'utf8');
  return `pii:${keyId}:${base32(h.digest().subarray(0, 10))}`;
}

/** The replacement text for a matched `text` (drop_field is handled by the caller). */
export function applyOperator(op: Operator, text: string, tenant: string | undefined): string {
  switch (op.kind) {
    case 'replace':
      return op.text;
    case 'mask':
      return maskText(text, op.keepLast);
    case 'hash':
      return pseudonym(op.keyId, op.key, text, op.perTenant, tenant);
    case 'drop_field':
      return '';
  }
}
