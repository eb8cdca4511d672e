#!/usr/bin/env node
/**
 * A small refund agent whose every step is audited through sealtrail before
 * the agent goes on. The "model" is a script (no network, no API key); the
 * agent loop is an async generator of steps, and AuditCollector sits between
 * the loop and the code that consumes it.
 *
 *   npm run build
 *   npx sealtrail dev &                     # a sidecar and collector, socket at .sealtrail/events.sock
 *   node examples/scripted-agent/agent.mjs --order 551902
 *
 * Options: --socket PATH (default $SEALTRAIL_SOCKET or .sealtrail/events.sock),
 * --session ID, --order N; EXAMPLE_ACK_TIMEOUT_MS (default 5000). Prints one
 * JSON line: the answer and the steps.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { AuditClient, AuditCollector, ClientError } from 'sealtrail/client';

const { values } = parseArgs({
  options: {
    socket: { type: 'string', default: process.env.SEALTRAIL_SOCKET ?? '.sealtrail/events.sock' },
    session: { type: 'string', default: `session-${randomUUID()}` },
    order: { type: 'string', default: '551902' },
  },
});

const MODEL = { provider: 'scripted', name: 'scripted-refunds-1' };

/** The tools the agent may use; refunds above 100 EUR need a human's approval. */
const tools = {
  // even order numbers were expensive: their refund goes through an approval
  lookup_order: ({ order_id }) => ({ order_id, status: 'delivered', paid_eur: Number(order_id) % 2 === 0 ? 140 : 40 }),
  issue_refund: ({ order_id, eur }) => ({ order_id, refunded_eur: eur, reference: `RF-${order_id}` }),
};

/**
 * The scripted model: given what happened so far, the next thing it "says".
 * A real agent would call a model here; the shape of its answer is the same.
 */
function scriptedModel(history) {
  const last = history.at(-1);
  if (!last) return { tool: 'lookup_order', args: { order_id: values.order } };
  if (last.tool === 'lookup_order') return { tool: 'issue_refund', args: { order_id: last.result.order_id, eur: last.result.paid_eur } };
  return { answer: `Refunded ${last.result.refunded_eur} EUR for order ${last.result.order_id} (${last.result.reference}).` };
}

/**
 * The agent loop, one step at a time. Code after a `yield` runs only once
 * the consumer asks for the next step, and AuditCollector asks only after
 * the step's event is stored: so a tool runs only after its tool_call was
 * audited, and with a failClosed client not at all if it could not be.
 */
async function* refundAgent() {
  const history = [];
  for (let turn = 1; turn <= 5; turn++) {
    const reply = scriptedModel(history);
    yield { type: 'model_call', model: MODEL, usage: { input_tokens: 30 * turn, output_tokens: 12 } };
    if (reply.answer) {
      yield { type: 'final', text: reply.answer };
      return;
    }
    const callId = `call_${turn}`;
    if (reply.tool === 'issue_refund') {
      const needsApproval = reply.args.eur > 100;
      yield { type: 'decision', decision: needsApproval ? 'review' : 'allow', rule: 'refunds-up-to-100-eur', action: 'issue_refund' };
      if (needsApproval) {
        yield { type: 'approval', status: 'requested', action: 'issue_refund' };
        yield { type: 'approval', status: 'granted', approver: 'alice', action: 'issue_refund' };
      }
    }
    yield { type: 'tool_call', name: reply.tool, arguments: reply.args, id: callId };
    // reached only once the tool_call above is stored by the sidecar
    const result = tools[reply.tool](reply.args);
    history.push({ tool: reply.tool, result });
    yield { type: 'tool_result', name: reply.tool, id: callId, output: result };
  }
  throw new Error('the agent did not finish within 5 turns');
}

// failClosed: an event the sidecar did not answer for in time rejects, and the step is not passed on
const ackTimeoutMs = Number(process.env.EXAMPLE_ACK_TIMEOUT_MS ?? 5000);
const client = new AuditClient({ socket: values.socket, failClosed: true, ackTimeoutMs });
const collector = new AuditCollector({
  client,
  agent: { id: 'refund-bot', name: 'Refund bot' },
  actor: { id: 'customer-7', type: 'user' },
  session_id: values.session,
  trace_id: randomUUID().replaceAll('-', ''),
});

const steps = [];
let answer;
try {
  for await (const step of collector.wrap(refundAgent())) {
    steps.push(step.type);
    if (step.type === 'final') answer = step.text;
  }
} catch (err) {
  // Fail closed: a step that could not be audited was not acted on. Say why in one line, no stack.
  if (err instanceof ClientError) {
    process.stderr.write(`refund-bot stopped: ${err.code}: ${err.message}\n`);
    process.exitCode = 1;
  } else throw err;
} finally {
  await client.close({ timeoutMs: ackTimeoutMs }).catch(() => undefined);
}
if (process.exitCode !== 1) process.stdout.write(`${JSON.stringify({ answer, session_id: values.session, steps })}\n`);
