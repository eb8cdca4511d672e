import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, type Deployment } from '../helpers/deployment.js';
import { ROOT, waitFor, type Proc } from '../helpers/procs.js';

/**
 * examples/scripted-agent run as its README says (node, against the built
 * package, through the package name), its AuditClient on the socket source
 * of a real sidecar shipping to a real collector; its records are read back
 * from the collector's query API.
 */

const run = promisify(execFile);

/** A record as the collector returns it: the fields this test reads. */
interface Stored {
  event_type: string;
  seq: number;
  trace_id?: string;
  model?: { provider?: string; name?: string };
  [field: string]: unknown;
}
let d: Deployment;
let collector: Proc | undefined;
let sidecar: Proc | undefined;
let sock: string;

beforeAll(async () => {
  // the example imports 'sealtrail/client', i.e. the built package
  expect(existsSync(join(ROOT, 'dist/src/client/index.js')), 'run `npm run build` first').toBe(true);
  d = await makeDeployment({ prefix: 'st-example-', extraSources: (dir) => [`{ id: agent, type: socket, path: ${join(dir, 'agent.sock')} }`] });
  sock = join(d.dir, 'agent.sock');
  collector = await startCollectorProc(d);
  sidecar = await startSidecarProc(d);
});

afterAll(async () => {
  if (sidecar) await stop(sidecar, 'SIGKILL');
  if (collector) await stop(collector, 'SIGKILL');
  rmSync(d.dir, { recursive: true, force: true });
});

describe('examples/scripted-agent', () => {
  it('audits every significant step; the collector holds them in order with agent, actor, session, trace, tool and model', async () => {
    const session = 'example-session-1';
    const { stdout } = await run(process.execPath, [join(ROOT, 'examples/scripted-agent/agent.mjs'), '--socket', sock, '--session', session, '--order', '551902'], { cwd: ROOT });
    const out = JSON.parse(stdout) as { answer: string; session_id: string; steps: string[] };
    expect(out.answer).toBe('Refunded 140 EUR for order 551902 (RF-551902).');
    expect(out.steps).toEqual(['model_call', 'tool_call', 'tool_result', 'model_call', 'decision', 'approval', 'approval', 'tool_call', 'tool_result', 'model_call', 'final']);

    const expected = ['model_called', 'tool_invoked', 'tool_completed', 'model_called', 'policy_decided', 'approval_requested', 'approval_granted', 'tool_invoked', 'tool_completed', 'model_called'];
    let items: Array<{ record: Stored }> = [];
    await waitFor('the example records at the collector', async () => {
      items = (await queryAll(d, `&session_id=${session}`)) as typeof items;
      return items.length >= expected.length;
    }, 30_000, 100);
    const recs = items.map((i) => i.record).sort((a, b) => a.seq - b.seq);
    expect(recs.map((r) => r.event_type)).toEqual(expected);
    const traceId = recs[0]!.trace_id;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const r of recs) {
      expect(r).toMatchObject({ session_id: session, trace_id: traceId, agent: { id: 'refund-bot', name: 'Refund bot' }, actor: { id: 'customer-7', type: 'user' }, source: 'agent' });
    }
    for (const r of recs.filter((x) => x.event_type === 'model_called')) expect(r.model).toEqual({ provider: 'scripted', name: 'scripted-refunds-1' });
    expect(recs[1]).toMatchObject({ tool: { name: 'lookup_order', arguments: { order_id: '551902' }, call_id: 'call_1' } });
    expect(recs[2]).toMatchObject({ outcome: 'success', tool: { name: 'lookup_order', call_id: 'call_1' }, details: { output: { paid_eur: 140 } } });
    expect(recs[4]).toMatchObject({ policy: { decision: 'review', rule: 'refunds-up-to-100-eur' }, action: 'issue_refund' });
    expect(recs[6]).toMatchObject({ approval: { status: 'granted', approver: 'alice' }, outcome: 'success' });
    expect(recs[7]).toMatchObject({ tool: { name: 'issue_refund', arguments: { order_id: '551902', eur: 140 } } });
  });

  it('fails closed: with no sidecar answering, it stops at its first step and exits non-zero', async () => {
    const err = (await run(process.execPath, [join(ROOT, 'examples/scripted-agent/agent.mjs'), '--socket', join(d.dir, 'nobody.sock')], { cwd: ROOT, env: { ...process.env, EXAMPLE_ACK_TIMEOUT_MS: '200' } }).catch((e: unknown) => e)) as { code?: number; stdout?: string; stderr?: string };
    expect(err.code).not.toBe(0);
    expect(err.code).toBe(1);
    // the missing socket is said once as a process warning, then why the agent stopped; no stack trace
    expect(err.stderr).toMatch(/\[client_connection_failed\] SealtrailClientWarning: .*nobody\.sock/);
    expect(err.stderr).toMatch(/\nrefund-bot stopped: client_ack_timeout: .+\n$/);
    expect(err.stderr).not.toContain('    at ');
    expect(err.stdout).toBe('');
  });
});
