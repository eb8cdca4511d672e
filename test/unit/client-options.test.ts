import { describe, expect, it } from 'vitest';
import { AuditClient, CLIENT_DEFAULTS, ClientError, DEFAULT_BACKOFF } from '../../src/client/index.js';
import { resolveOptions, type AuditClientOptions } from '../../src/client/options.js';

/** Options: one transport, defaults as documented, and a wrong option refused at construction, named. */

function refused(opts: unknown): ClientError {
  try {
    new AuditClient(opts as AuditClientOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('client_options_invalid');
    return err as ClientError;
  }
  throw new Error('expected client_options_invalid');
}

describe('AuditClient options', () => {
  it('defaults', () => {
    const o = resolveOptions({ socket: '/run/sealtrail/events.sock' });
    expect(o).toMatchObject({
      transport: { kind: 'socket', path: '/run/sealtrail/events.sock' },
      failClosed: false,
      ackTimeoutMs: 5000,
      maxQueue: 10_000,
      maxQueueBytes: 64 * 1024 * 1024,
      maxEventBytes: 1024 * 1024,
      backoff: DEFAULT_BACKOFF,
    });
    expect(CLIENT_DEFAULTS.maxQueue).toBe(10_000);
    const f = resolveOptions({ file: '/var/log/agent/a.jsonl' });
    expect(f.transport).toEqual({ kind: 'file', path: '/var/log/agent/a.jsonl', fsync: false, mode: 0o600 });
  });

  it('adds /v1/events to the http base URL, keeping a proxy prefix', () => {
    const url = (http: string) => {
      const t = resolveOptions({ http }).transport;
      return t.kind === 'http' ? t.url.href : '';
    };
    expect(url('http://127.0.0.1:9470')).toBe('http://127.0.0.1:9470/v1/events');
    expect(url('http://127.0.0.1:9470/')).toBe('http://127.0.0.1:9470/v1/events');
    expect(url('https://audit.example/sidecar/')).toBe('https://audit.example/sidecar/v1/events');
    expect(url('http://h:1/v1/events')).toBe('http://h:1/v1/events');
  });

  it('refuses a missing or double transport', () => {
    expect(refused({}).message).toContain('set exactly one of socket');
    expect(refused({ socket: '/a', file: '/b' }).message).toContain('socket/file');
    expect(refused(null).code).toBe('client_options_invalid');
  });

  it.each([
    [{ socket: '' }, 'socket'],
    [{ http: 'ftp://x' }, 'http'],
    [{ http: 'not a url' }, 'http'],
    [{ http: 'http://h:1/?q=1' }, 'http'],
    [{ socket: '/s', maxQueue: 0 }, 'maxQueue'],
    [{ socket: '/s', maxQueue: 1.5 }, 'maxQueue'],
    [{ socket: '/s', ackTimeoutMs: -1 }, 'ackTimeoutMs'],
    [{ socket: '/s', ackTimeoutMs: 2 ** 31 }, 'ackTimeoutMs'],
    [{ socket: '/s', failClosed: 'yes' }, 'failClosed'],
    [{ socket: '/s', maxQueueBytes: '1MiB' }, 'maxQueueBytes'],
    [{ socket: '/s', reconnect: { jitter: 2 } }, 'reconnect.jitter'],
    [{ socket: '/s', reconnect: { multiplier: 0.5 } }, 'reconnect.multiplier'],
    [{ socket: '/s', reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, 'reconnect.maxDelayMs'],
    [{ socket: '/s', onConnectionError: 'log' }, 'onConnectionError'],
    [{ http: 'http://h:1', maxBatchEvents: 0 }, 'maxBatchEvents'],
    [{ http: 'http://h:1', maxBatchEvents: 10_001 }, 'maxBatchEvents'],
    [{ file: '/f', fsync: 1 }, 'fsync'],
    [{ file: '/f', mode: 0o1777 }, 'mode'],
  ])('%j: refused naming %s', (opts, option) => {
    expect(refused(opts).message).toContain(`option ${option}:`);
  });
});
