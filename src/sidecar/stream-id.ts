import { hostname } from 'node:os';

/**
 * Default stream id: the pod name (downward API POD_NAME, else the host name)
 * plus the buffer's creation time, so a new buffer is always a new stream.
 */
export function defaultStreamId(name: string | undefined, env: NodeJS.ProcessEnv, now = new Date()): string {
  const base = (name ?? env.POD_NAME ?? hostname())
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100) || 'sidecar';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${base}-${stamp}`;
}
