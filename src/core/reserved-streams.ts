/**
 * Stream ids beginning with this are the collectors' own read-audit streams
 * (collector/read-audit.ts). No collector accepts a batch for one over HTTP
 * (403 stream_reserved), so no sidecar, on any replica, can append to a
 * collector's stream or claim one in advance; and a sidecar refuses to start
 * on such an id rather than seal batches no collector will take.
 */
export const COLLECTOR_STREAM_PREFIX = 'collector-';

export function isCollectorStream(stream: string): boolean {
  return stream.startsWith(COLLECTOR_STREAM_PREFIX);
}
