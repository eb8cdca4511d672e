/** What a config file leaves out: the defaults of sidecar and collector settings. */
import { GiB, MiB, SECOND } from './normalize-values.js';

/** `source` of the records a sidecar writes itself (heartbeats) */
export const RESERVED_SOURCE_ID = 'sealtrail';

export const SIDECAR_DEFAULTS = {
  data_dir: './.sealtrail/sidecar',
  max_line_bytes: MiB,
  max_line_bytes_limit: 64 * MiB,
  start_at: 'beginning',
  /** socket and http sources */
  format: 'sealtrail',
  /** file sources: recognise sealtrail, OTLP/JSON and CloudEvents lines one by one */
  file_format: 'auto',
  otlp_listen: '127.0.0.1:4318',
  otlp_max_body_bytes: 8 * MiB,
  otlp_max_items: 100_000,
  hmac_key_id: 'k1',
  seal_max_records: 1000,
  seal_max_interval: SECOND,
  heartbeat_interval: 30 * SECOND,
  socket_mode: 0o600,
  socket_max_connections: 1024,
  http_max_body_bytes: 10 * MiB,
  http_max_events: 10_000,
  ship_timeout: 10 * SECOND,
  ship_backoff_initial: 200,
  ship_backoff_max: 30 * SECOND,
  ship_max_batch_bytes: 8 * MiB,
  buffer_max_bytes: GiB,
  buffer_max_records: 1_000_000,
  telemetry_listen: '127.0.0.1:9470',
} as const;

export const COLLECTOR_DEFAULTS = {
  listen: '127.0.0.1:7470',
  max_body_bytes: 16 * MiB,
  store_path: './.sealtrail/collector/audit.db',
} as const;
