/**
 * The collector's own view of its configuration. Deliberately narrow and
 * independent of src/config so the HTTP app can be built and tested without
 * the YAML loader; the CLI maps a CollectorConfig onto this shape.
 * Field names follow the YAML (snake_case); durations are ms, sizes bytes.
 */
export interface CollectorStreamKey {
  /** a stream id, or a prefix pattern ending in "*" ("agents-*", "*") */
  match: string;
  /** signed-note verifier key text: "<name>+<hash8hex>+<base64>" */
  vkey: string;
}

export interface CollectorHmacKey {
  id: string;
  key: Buffer;
}

export interface CollectorOptions {
  listen: { host: string; port: number };
  /** POST /v1/batches body limit; larger bodies get 413 */
  max_body_bytes: number;
  /** bearer tokens allowed on the query API */
  admin_tokens: string[];
  /** first matching entry wins */
  streams: CollectorStreamKey[];
  /** accept an unknown stream's batch 0 with its own `vkey` and pin that key */
  trust_on_first_use: boolean;
  /** chain keys shared with the sidecars; without a key the chain head is only cross-checked */
  hmac_keys: CollectorHmacKey[];
  /**
   * Key for the integrity tag on query cursors. Replicas must share it, so the
   * default is derived from the admin tokens (which replicas already share).
   */
  cursor_key?: Buffer;
  /** upper bound on records in one batch (default 100000) */
  max_batch_records?: number;
}

export const DEFAULT_MAX_BATCH_RECORDS = 100_000;
