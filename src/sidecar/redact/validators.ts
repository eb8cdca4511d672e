/**
 * Checksum validators for detector matches. A detector's pattern finds the
 * shape; these decide whether the shape is a real identifier, so a rule only
 * redacts what passes. Each takes the matched text as it appeared (spaces and
 * dashes used as group separators are skipped) and allocates nothing: they
 * run once per candidate on the redaction hot path.
 */

function isSeparator(c: number): boolean {
  return c === 0x20 || c === 0x2d; // space, '-'
}

/**
 * Luhn (ISO/IEC 7812-1 annex B) over the digits of `text`. Any character
 * other than a digit, space or dash makes it fail: the caller's pattern
 * decided the shape, and a stray character means the text is not what the
 * pattern was meant to find.
 */
export function luhn(text: string): boolean {
  let sum = 0;
  let digits = 0;
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text.charCodeAt(i);
    if (isSeparator(c)) continue;
    const d = c - 0x30;
    if (d < 0 || d > 9) return false;
    if (digits % 2 === 1) sum += d >= 5 ? d * 2 - 9 : d * 2;
    else sum += d;
    digits++;
  }
  // A lone digit "passes" trivially (0) but is no card number.
  return digits >= 2 && sum % 10 === 0;
}

/**
 * ISO 13616 IBAN check: country code, two check digits, 11–30 alphanumerics;
 * moving the first four characters to the end and reading letters as 10..35
 * gives a number ≡ 1 (mod 97). Spaces and dashes between groups are skipped. Computed digit by digit so no big integer is
 * built. Check digits 00, 01 and 99 are never issued (ISO 7064 MOD 97-10
 * yields 02..98), yet 01 ≡ 98 and 00 ≡ 97 (mod 97) would pass the sum, so
 * they are refused outright. Lowercase letters are accepted: people type them.
 */
export function ibanMod97(text: string): boolean {
  // Pass 1: shape and length, without building a normalised copy.
  let n = 0;
  let c0 = 0;
  let c1 = 0;
  let k0 = 0;
  let k1 = 0;
  for (let i = 0; i < text.length; i++) {
    const c = upper(text.charCodeAt(i));
    if (isSeparator(c)) continue;
    const letter = c >= 0x41 && c <= 0x5a;
    const digit = c >= 0x30 && c <= 0x39;
    if (n < 2 ? !letter : n < 4 ? !digit : !letter && !digit) return false;
    if (n === 0) c0 = c;
    else if (n === 1) c1 = c;
    else if (n === 2) k0 = c - 0x30;
    else if (n === 3) k1 = c - 0x30;
    n++;
  }
  if (n < 15 || n > 34) return false;
  const check = k0 * 10 + k1;
  if (check < 2 || check > 98) return false;
  // Pass 2: the BBAN, then the country code and check digits.
  let r = 0;
  let seen = 0;
  for (let i = 0; i < text.length; i++) {
    const c = upper(text.charCodeAt(i));
    if (isSeparator(c)) continue;
    if (seen++ < 4) continue;
    r = step(r, c);
  }
  r = step(r, c0);
  r = step(r, c1);
  r = (r * 10 + k0) % 97;
  r = (r * 10 + k1) % 97;
  return r === 1;
}

function upper(c: number): number {
  return c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
}

function step(r: number, c: number): number {
  // Letters are two decimal digits (A=10 .. Z=35).
  return c <= 0x39 ? (r * 10 + (c - 0x30)) % 97 : (r * 100 + (c - 0x37)) % 97;
}

/**
 * US Social Security number structure, per SSA: never issued are area 000,
 * 666 and 900–999, group 00 and serial 0000. Exactly nine digits, optionally
 * separated by spaces or dashes. Numbers the SSA voided after they were
 * printed in advertising (078-05-1120, 219-09-9999) are structurally valid
 * and deliberately still pass: redacting one costs nothing.
 */
export function ssnValid(text: string): boolean {
  let area = 0;
  let group = 0;
  let serial = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSeparator(c)) continue;
    const d = c - 0x30;
    if (d < 0 || d > 9 || n === 9) return false;
    if (n < 3) area = area * 10 + d;
    else if (n < 5) group = group * 10 + d;
    else serial = serial * 10 + d;
    n++;
  }
  return n === 9 && area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0;
}

export type ValidatorName = 'luhn' | 'iban_mod97' | 'ssn_valid';

export const VALIDATORS: Readonly<Record<ValidatorName, (text: string) => boolean>> = Object.freeze({
  luhn,
  iban_mod97: ibanMod97,
  ssn_valid: ssnValid,
});
