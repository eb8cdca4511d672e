import { ApiError } from '../http-error.js';
import type { AuditStore, StreamState } from '../store/types.js';
import { STREAM_ID } from '../verify-batch.js';

/** Validates the :stream path parameter and loads its head; 404 when never seen. */
export async function loadStream(store: AuditStore, params: unknown): Promise<StreamState> {
  const stream = (params as { stream?: unknown } | undefined)?.stream;
  if (typeof stream !== 'string' || !STREAM_ID.test(stream)) {
    throw new ApiError(400, 'stream_invalid', 'path parameter "stream" is not a valid stream id');
  }
  const state = await store.getStreamState(stream);
  if (!state) throw new ApiError(404, 'stream_not_found', `stream ${stream} not found`);
  return state;
}
