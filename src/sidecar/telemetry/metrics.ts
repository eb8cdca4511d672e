import client from 'prom-client';

/** ms between samples of the event-loop lag (sealtrail_nodejs_eventloop_lag_*) */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** Sidecar metrics, prefix sealtrail_, following Prometheus naming (units and _total suffixes). */
export class SidecarMetrics {
  readonly registry = new client.Registry();
  readonly linesRead: client.Counter<'source'>;
  readonly recordsIngested: client.Counter<'source'>;
  readonly recordsQuarantined: client.Counter<'source' | 'reason'>;
  readonly linesBlank: client.Counter<'source'>;
  readonly eventsDuplicate: client.Counter<'source'>;
  readonly redactionHits: client.Counter<'rule'>;
  readonly bufferRecords: client.Gauge;
  readonly bufferBytes: client.Gauge;
  readonly unanchoredRecords: client.Gauge;
  readonly shippingLag: client.Gauge;
  readonly batchesSealed: client.Counter;
  readonly batchesShipped: client.Counter;
  readonly batchesFailed: client.Counter<'reason'>;
  readonly shipDuration: client.Histogram;
  readonly shippingHalted: client.Gauge;
  readonly shippingHaltInfo: client.Gauge<'batch' | 'status' | 'reason'>;
  readonly chainHeadSeq: client.Gauge;
  readonly lastCheckpoint: client.Gauge;
  readonly fileLag: client.Gauge<'source' | 'path'>;
  readonly backpressure: client.Gauge;
  readonly diskFull: client.Gauge;
  readonly commitsFailed: client.Counter<'reason'>;
  readonly commits: client.Counter<'source'>;
  readonly heartbeats: client.Counter;
  readonly rejectionReports: client.Counter;
  readonly httpRequests: client.Counter<'source' | 'code'>;

  constructor() {
    const r = [this.registry];
    // The event-loop lag histogram samples on a timer of its own; prom-client's
    // default of 10 ms woke the process 100 times a second, ~0.3% of a core
    // even idle, a sixth of the budget at 100 events/s. Every 100 ms still
    // sees any stall long enough to matter to the sources.
    client.collectDefaultMetrics({ register: this.registry, prefix: 'sealtrail_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    this.linesRead = new client.Counter({ name: 'sealtrail_records_read_total', help: 'Lines read from sources', labelNames: ['source'], registers: r });
    this.recordsIngested = new client.Counter({ name: 'sealtrail_records_ingested_total', help: 'Records committed to the local buffer', labelNames: ['source'], registers: r });
    this.recordsQuarantined = new client.Counter({ name: 'sealtrail_records_quarantined_total', help: 'Lines kept in quarantine (by position and reason)', labelNames: ['source', 'reason'], registers: r });
    this.linesBlank = new client.Counter({ name: 'sealtrail_lines_blank_total', help: 'Empty or whitespace-only lines skipped', labelNames: ['source'], registers: r });
    this.eventsDuplicate = new client.Counter({
      name: 'sealtrail_events_duplicate_total',
      help: 'Events not stored again because a record already carries their event_id (client resends)',
      labelNames: ['source'],
      registers: r,
    });
    this.redactionHits = new client.Counter({ name: 'sealtrail_redaction_hits_total', help: 'Redaction replacements by rule', labelNames: ['rule'], registers: r });
    this.bufferRecords = new client.Gauge({ name: 'sealtrail_buffer_records', help: 'Records held in the local buffer', registers: r });
    this.bufferBytes = new client.Gauge({ name: 'sealtrail_buffer_bytes', help: 'Canonical bytes held in the local buffer', registers: r });
    this.unanchoredRecords = new client.Gauge({ name: 'sealtrail_unanchored_records', help: 'Records not yet acknowledged by the collector', registers: r });
    this.shippingLag = new client.Gauge({ name: 'sealtrail_shipping_lag_seconds', help: 'Age of the oldest unacknowledged record', registers: r });
    this.batchesSealed = new client.Counter({ name: 'sealtrail_batches_sealed_total', help: 'Batches sealed with a signed checkpoint', registers: r });
    this.batchesShipped = new client.Counter({ name: 'sealtrail_batches_shipped_total', help: 'Batches acknowledged by the collector', registers: r });
    this.batchesFailed = new client.Counter({ name: 'sealtrail_batches_failed_total', help: 'Failed ship attempts by reason', labelNames: ['reason'], registers: r });
    this.shipDuration = new client.Histogram({ name: 'sealtrail_ship_request_duration_seconds', help: 'Duration of POST /v1/batches', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: r });
    this.shippingHalted = new client.Gauge({ name: 'sealtrail_shipping_halted', help: '1 while the collector refuses batches for a reason retrying cannot fix (alert on this)', registers: r });
    this.shippingHaltInfo = new client.Gauge({ name: 'sealtrail_shipping_halt_info', help: '1 for the batch the collector refuses while shipping is halted, labelled with its number, the HTTP status (0: built locally) and the reason; no series while shipping', labelNames: ['batch', 'status', 'reason'], registers: r });
    this.chainHeadSeq = new client.Gauge({ name: 'sealtrail_chain_head_seq', help: 'Seq of the newest record in the chain', registers: r });
    this.lastCheckpoint = new client.Gauge({ name: 'sealtrail_last_checkpoint_timestamp_seconds', help: 'Unix time of the newest signed checkpoint', registers: r });
    this.fileLag = new client.Gauge({ name: 'sealtrail_file_lag_bytes', help: 'File size minus committed offset', labelNames: ['source', 'path'], registers: r });
    this.backpressure = new client.Gauge({ name: 'sealtrail_backpressure', help: '1 while reading is paused because the buffer is full', registers: r });
    this.diskFull = new client.Gauge({ name: 'sealtrail_disk_full', help: '1 while the buffer cannot commit for lack of disk space (sources hold their lines and retry; alert on this)', registers: r });
    this.commitsFailed = new client.Counter({ name: 'sealtrail_buffer_commits_failed_total', help: 'Buffer commits that failed and will be retried, by reason', labelNames: ['reason'], registers: r });
    this.commits = new client.Counter({
      name: 'sealtrail_buffer_commits_total',
      help: 'Buffer transactions that committed lines or a position (each one fsync), by source: lines per commit is records_read over this',
      labelNames: ['source'],
      registers: r,
    });
    this.heartbeats = new client.Counter({ name: 'sealtrail_heartbeats_total', help: 'Heartbeat records written while the stream was idle', registers: r });
    this.rejectionReports = new client.Counter({ name: 'sealtrail_rejection_reports_total', help: 'ingest_rejected records chained to report quarantined lines upstream', registers: r });
    this.httpRequests = new client.Counter({ name: 'sealtrail_http_requests_total', help: 'requests to the http source (POST /v1/events) and otlp sources, by answer (accepted, or the error code)', labelNames: ['source', 'code'], registers: r });
  }
}
