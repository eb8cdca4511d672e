/**
 * The encodings the redaction bypass tests write canary PII in (full-width
 * letters and digits, JSON escapes, percent-encoding, base64url) and a Luhn
 * completion for card numbers that pass the payment_card check.
 */
export const FULL_WIDTH_DIGIT = (s: string): string => s.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d)));
export const FULL_WIDTH_ASCII = (s: string): string =>
  [...s].map((c) => (c >= '!' && c <= '~' ? String.fromCharCode(c.charCodeAt(0) - 0x21 + 0xff01) : c)).join('');
export const ESCAPE_ALL = (s: string): string => [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
export const PERCENT_ALL = (s: string): string => [...Buffer.from(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
export const B64URL = (b: Buffer): string => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

export function luhnComplete(digits15: string): string {
  let sum = 0;
  for (let i = 0; i < digits15.length; i++) {
    let d = Number(digits15[digits15.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits15 + String((10 - (sum % 10)) % 10);
}
