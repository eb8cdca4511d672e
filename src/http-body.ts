/**
 * How a request body is labelled, read the same way by every listener that
 * takes one (the collector's POST /v1/batches, the sidecar's POST
 * /v1/events): which content coding, which media type, and whether its
 * charset is UTF-8. Each listener answers a refusal in its own error shape.
 */

export type ContentCoding = 'identity' | 'gzip';

/**
 * The body's content coding, or undefined for one sealtrail does not decode.
 * Node joins repeated Content-Encoding headers with ", ", so a stack of
 * codings is undefined too.
 */
export function contentCodingOf(header: string | undefined): ContentCoding | undefined {
  const coding = (header ?? '').trim().toLowerCase();
  if (coding === '' || coding === 'identity') return 'identity';
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip';
  return undefined;
}

/**
 * The lowercased media type of a Content-Type header, and whether its
 * charset, if it names one, is UTF-8 (RFC 8259 §8.1: JSON between systems is
 * UTF-8; a body in another charset would be decoded wrongly, so it is
 * refused rather than guessed at).
 */
export function mediaTypeOf(contentType: string | undefined): { mediaType: string; utf8: boolean } {
  const [type = '', ...params] = (contentType ?? '').split(';');
  let utf8 = true;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') utf8 = false;
  }
  return { mediaType: type.trim().toLowerCase(), utf8 };
}
