import client from 'prom-client';

/**
 * Collector metrics for GET /metrics, prefix sealtrail_collector_ (process
 * metrics: sealtrail_), one registry per app so replicas in one process
 * (tests) never share counters. Labels are bounded: routes are patterns, not
 * URLs, and streams never label a series (a fleet has one per pod).
 */
export class CollectorMetrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'route' | 'method' | 'status'>;
  readonly requestDuration: client.Histogram<'route'>;
  readonly errors: client.Counter<'route' | 'code'>;
  readonly batchesStored: client.Counter;
  readonly recordsStored: client.Counter;
  readonly batchesDuplicate: client.Counter;
  readonly storeReady: client.Gauge;
  readonly tlsReloads: client.Counter<'result'>;

  constructor() {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'sealtrail_' });
    this.requests = new client.Counter({
      name: 'sealtrail_collector_http_requests_total',
      help: 'Requests answered, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.requestDuration = new client.Histogram({
      name: 'sealtrail_collector_http_request_duration_seconds',
      help: 'Time from request to answer, by route pattern',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.errors = new client.Counter({
      name: 'sealtrail_collector_errors_total',
      help: 'Requests refused, by route pattern and error code (the code in the answer body)',
      labelNames: ['route', 'code'],
      registers,
    });
    this.batchesStored = new client.Counter({ name: 'sealtrail_collector_batches_stored_total', help: 'Batches verified and stored', registers });
    this.recordsStored = new client.Counter({ name: 'sealtrail_collector_records_stored_total', help: 'Records verified and stored', registers });
    this.batchesDuplicate = new client.Counter({
      name: 'sealtrail_collector_batches_duplicate_total',
      help: 'Resends of stored batches, acknowledged without storing again',
      registers,
    });
    this.storeReady = new client.Gauge({
      name: 'sealtrail_collector_store_ready',
      help: '1 when the store answered the last readiness check (GET /readyz or a scrape), else 0',
      registers,
    });
    this.tlsReloads = new client.Counter({
      name: 'sealtrail_collector_tls_reloads_total',
      help: 'Certificate files re-read after a change: applied, or refused (the old certificate stays)',
      labelNames: ['result'],
      registers,
    });
  }
}
