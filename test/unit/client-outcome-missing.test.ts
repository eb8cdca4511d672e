import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditClient } from '../../src/client/index.js';

/**
 * A sidecar that committed a line but cannot say what became of it answers
 * `outcome_missing`: the event may be stored. The client must not report it
 * refused; it resends on a new connection, where the sidecar (here a
 * scripted socket server speaking the protocol) answers the duplicate.
 */
const dir = mkdtempSync(join(tmpdir(), 'sealtrail-outcome-missing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('AuditClient and an outcome_missing answer', () => {
  it('resends the line and resolves with the answer to the resend', async () => {
    const path = join(dir, 's.sock');
    const received: Array<{ connection: number; eventId: string }> = [];
    let connections = 0;
    const server = net.createServer((socket) => {
      const connection = ++connections;
      let rest = '';
      let line = 0;
      socket.on('data', (d) => {
        rest += d.toString('utf8');
        for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
          const event = JSON.parse(rest.slice(0, nl)) as { event_id: string };
          rest = rest.slice(nl + 1);
          line++;
          received.push({ connection, eventId: event.event_id });
          socket.write(
            connection === 1
              ? `${JSON.stringify({ line, error: { code: 'outcome_missing', message: `the outcome of line ${line} is unknown` } })}\n`
              : `${JSON.stringify({ ack: line, seq: 41, duplicate: true })}\n`,
          );
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    const client = new AuditClient({ socket: path, reconnect: { initialDelayMs: 10, maxDelayMs: 50 }, onConnectionError: () => undefined });
    try {
      const result = await client.emit({ event_type: 'tool_invoked', tool: { name: 'search' } });
      expect(result).toMatchObject({ seq: 41, duplicate: true });
      expect(received.map((r) => r.connection)).toEqual([1, 2]);
      expect(received[1]!.eventId).toBe(received[0]!.eventId);
      expect(result.event_id).toBe(received[0]!.eventId);
    } finally {
      await client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
