/**
 * A real OtlpSource on an ephemeral port committing into a real buffer
 * through the real Ingest, as the sidecar wires it: what the OTLP receiver
 * tests start, one per test, and close after it.
 */
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../../src/http-limits.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestLine } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET } from '../../src/sidecar/redact/index.js';
import type { OtlpRequestMeta, OtlpRequestSummary } from '../../src/sidecar/sources/otlp-http.js';
import { OtlpSource, type OtlpSourceOptions } from '../../src/sidecar/sources/otlp-source.js';
import { HMAC_KEY, KEY_ID, tempDir, type TempDir } from './sidecar-fixtures.js';

export interface OtlpEnv {
  tmp: TempDir;
  buffer: AuditBuffer;
  source: OtlpSource;
  url: string;
  errors: Error[];
  summaries: OtlpRequestSummary[];
  metas: OtlpRequestMeta[];
  /** the sink throws on its next n calls */
  failSink: number;
  sinkLines: IngestLine[][];
}

export interface OtlpEnvs {
  start(o?: Partial<OtlpSourceOptions>, http?: Partial<HttpLimits>): Promise<OtlpEnv>;
  /** for afterEach: closes every source started, its buffer and its directory */
  cleanup(): Promise<void>;
}

export function otlpEnvs(defaults: { name: string; maxBodyBytes: number; maxItems: number }): OtlpEnvs {
  const started: OtlpEnv[] = [];
  return {
    async start(o = {}, http = {}) {
      const tmp = tempDir(`sealtrail-${defaults.name}-`);
      const buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => `${defaults.name}-stream` });
      const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => EMPTY_RULESET });
      const env = { tmp, buffer, url: '', errors: [], summaries: [], metas: [], failSink: 0, sinkLines: [] } as unknown as OtlpEnv;
      env.source = new OtlpSource({
        id: 'otel',
        listen: '127.0.0.1:0',
        maxBodyBytes: defaults.maxBodyBytes,
        maxItems: defaults.maxItems,
        http: { ...DEFAULT_HTTP_LIMITS, ...http },
        sink: (source, meta) => {
          // the source maps its lines lazily, as ingest reads them: kept as they pass
          const seen: IngestLine[] = [];
          env.sinkLines.push(seen);
          const lines = (function* () {
            for (const line of source) {
              seen.push(line);
              yield line;
            }
          })();
          env.metas.push(meta);
          if (env.failSink > 0) {
            env.failSink--;
            throw new Error('database or disk is full');
          }
          return ingest.ingest({ source: 'otel', path: meta.path, fileKey: `otlp:${meta.requestId}`, lines }).lines;
        },
        onError: (err) => env.errors.push(err),
        onResponse: (s) => env.summaries.push(s),
        ...o,
      });
      started.push(env);
      await env.source.start();
      env.url = `http://127.0.0.1:${env.source.port}`;
      return env;
    },
    async cleanup() {
      for (const env of started.splice(0)) {
        await env.source.close();
        env.buffer.close();
        env.tmp.cleanup();
      }
    },
  };
}
