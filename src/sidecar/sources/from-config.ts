/**
 * The configured sources, each wired to the sidecar's one commit path. Every
 * source's batch becomes an IngestChunk here, so a source knows nothing of
 * ingest or the buffer, and the commit path nothing of sources.
 *
 * Each kind of source is loaded only when the config has one: a sidecar
 * that tails files does not keep the socket, HTTP or OTLP receivers (and
 * what they import) in memory, nor, unless a format can meet OTLP lines,
 * the OTLP/JSON decoder (formats/source-format.ts).
 */
import type { SourceConfig } from '../../config/types.js';
import type { ReloadingServerTls } from '../../tls/server-tls.js';
import { cloudEventsFormat } from '../formats/cloudevents.js';
import { sourceFormat } from '../formats/source-format.js';
import type { IngestChunk } from '../ingest.js';
import { FileSource } from './file-source.js';
import type { EventsRequestSummary } from './http-events.js';
import type { HttpSource } from './http-source.js';
import type { OtlpSource } from './otlp-source.js';
import type { Source } from './source.js';
import type { LineOutcome, PositionStore } from './types.js';

export interface SourceWiring {
  /**
   * Commits lines with their position in one transaction and says what became
   * of each; throws only when nothing was committed (the source offers the
   * same lines again).
   */
  commit: (chunk: IngestChunk) => LineOutcome[];
  /** committed file positions */
  positions: PositionStore;
  /** the buffer, and so the stream, was created at this start: start_at applies */
  firstStart: boolean;
  onError: (source: string, err: Error) => void;
  onNotice: (source: string, message: string) => void;
  /** once per answered request of the http source (POST /v1/events) or an otlp source */
  onHttpResponse: (summary: Pick<EventsRequestSummary, 'source' | 'code'>) => void;
  /** the TLS of each otlp source with a `tls` block, by source id (its owner closes it) */
  otlpTls?: ReadonlyMap<string, ReloadingServerTls>;
}

export interface ConfiguredSources {
  /** in config order: the order they start, drain and close in */
  all: Source[];
  /** the file sources, for lag metrics */
  files: FileSource[];
  /** the http source (config allows one), whose handler the telemetry server serves */
  http: HttpSource | undefined;
  /** the OTLP receivers, each on its own port */
  otlp: OtlpSource[];
}

export async function sourcesFromConfig(configs: readonly SourceConfig[], w: SourceWiring): Promise<ConfiguredSources> {
  const out: ConfiguredSources = { all: [], files: [], http: undefined, otlp: [] };
  for (const src of configs) {
    const reporting = {
      onError: (err: Error) => w.onError(src.id, err),
      // inode reuse, recognised copies, truncation, stale sockets: worth a line, not an error
      onNotice: (message: string) => w.onNotice(src.id, message),
    };
    if (src.type === 'otlp') {
      const { OtlpSource } = await import('./otlp-source.js');
      const tls = w.otlpTls?.get(src.id);
      // Spans and log records arrive decoded, in sealtrail's input shape: the default format takes them as they are.
      const source = new OtlpSource({
        id: src.id,
        listen: src.listen,
        maxBodyBytes: src.max_body_bytes,
        maxItems: src.max_items,
        http: src.http,
        sink: (lines, meta) => w.commit({ source: src.id, path: meta.path, fileKey: `otlp:${meta.requestId}`, lines }),
        onResponse: w.onHttpResponse,
        ...(tls ? { tls } : {}),
        ...reporting,
      });
      out.all.push(source);
      out.otlp.push(source);
      continue;
    }
    // Relative mapping paths resolve against the working directory, like every path in the config.
    const format = await sourceFormat(src, process.cwd());
    if (src.type === 'socket') {
      const { SocketSource } = await import('./socket-source.js');
      out.all.push(
        new SocketSource({
          id: src.id,
          path: src.path,
          mode: src.mode,
          maxLineBytes: src.max_line_bytes,
          maxConnections: src.max_connections,
          sink: (b) => w.commit({ source: b.source, path: b.path, fileKey: b.fileKey, lines: b.lines, format }),
          ...reporting,
        }),
      );
    } else if (src.type === 'http') {
      const { HttpSource } = await import('./http-source.js');
      out.http = new HttpSource({
        id: src.id,
        maxBodyBytes: src.max_body_bytes,
        maxEvents: src.max_events,
        sink: (lines, meta) =>
          w.commit({ source: src.id, path: 'POST /v1/events', fileKey: `http:${meta.requestId}`, lines, format: meta.cloudEvents ? cloudEventsFormat : format }),
        onError: reporting.onError,
        onResponse: w.onHttpResponse,
      });
      out.all.push(out.http);
    } else {
      const source = new FileSource({
        id: src.id,
        include: src.include,
        exclude: src.exclude,
        maxLineBytes: src.max_line_bytes,
        // start_at applies to files found at the stream's first start only; after a
        // restart, files that appeared while the sidecar was down are read whole.
        startAt: w.firstStart ? src.start_at : 'beginning',
        positions: w.positions,
        sink: async (chunk) => {
          w.commit({
            source: chunk.source,
            path: chunk.file.path,
            fileKey: chunk.file.key,
            lines: chunk.lines,
            position: { source: chunk.source, ...chunk.position },
            format,
          });
        },
        ...reporting,
      });
      out.all.push(source);
      out.files.push(source);
    }
  }
  return out;
}
