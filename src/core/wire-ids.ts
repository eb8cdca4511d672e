/**
 * The id grammars of the sealed-batch wire format, for both ends.
 *
 * A collector accepts STREAM_ID and KEY_ID. What a sidecar or a collector's
 * own read-audit stream may be configured with (CONFIG_*) is a subset of
 * them, so a configured id can never make every batch of its stream be
 * refused (test/unit/wire-ids.test.ts holds the subsets to that).
 */

/**
 * A stream id becomes a URL path segment and a checkpoint origin line: no
 * slashes, spaces or controls, and never "." or "..".
 */
export const STREAM_ID = /^(?!\.\.?$)[A-Za-z0-9._][A-Za-z0-9._:@+-]{0,255}$/;

/** A chain key id, as a record carries it beside its MAC. */
export const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}$/;

/** stream.id and stream.name in a config, and a buffer's stream (JSON Schema pattern text). */
export const CONFIG_STREAM_ID = '^(?!\\.\\.?$)[A-Za-z0-9._][A-Za-z0-9._-]{0,127}$';

/** HMAC key ids in a config (JSON Schema pattern text). */
export const CONFIG_KEY_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
