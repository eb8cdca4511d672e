import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditClient, AuditCollector, ClientError, RUN_FAILED, type ClientEvent, type EmitResult, type EventSink } from '../../src/client/index.js';

/**
 * AuditCollector.wrap(): steps pass through unchanged and in order, each
 * significant one after its event is stored; the next step is not pulled
 * before that; a rejected emit ends the stream without passing the step on;
 * a source that throws is recorded as agent_run_failed and its error
 * re-thrown. The sinks are a real AuditClient (file transport) and a small
 * sink whose emits the test settles by hand.
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-collector-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A sink whose every emit waits until the test settles it. */
class HandSink implements EventSink {
  readonly calls: Array<{ event: ClientEvent; done: Deferred<EmitResult> }> = [];
  private waiting: Deferred<void> | undefined;
  emit(event: ClientEvent): Promise<EmitResult> {
    const done = deferred<EmitResult>();
    this.calls.push({ event, done });
    this.waiting?.resolve();
    return done.promise;
  }
  /** Resolves once the sink has received `n` emits. */
  async received(n: number): Promise<void> {
    while (this.calls.length < n) {
      this.waiting = deferred<void>();
      await this.waiting.promise;
    }
  }
}

/** A sink that stores every event and answers at once. */
class ListSink implements EventSink {
  readonly events: ClientEvent[] = [];
  constructor(private readonly refuse: (e: ClientEvent) => boolean = () => false) {}
  async emit(event: ClientEvent): Promise<EmitResult> {
    if (this.refuse(event)) throw new ClientError('client_ack_timeout', 'no answer (test)');
    this.events.push(event);
    return { event_id: `id-${this.events.length}`, seq: this.events.length - 1 };
  }
}

const tool = (name: string, i: number) => ({ type: 'tool_call', name, arguments: { i } });
const text = (t: string) => ({ type: 'text', text: t });

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('AuditCollector.wrap', () => {
  it('passes every step through unchanged and in order; emits one event per significant step with the context merged in', async () => {
    const file = join(dir, 'order.jsonl');
    const client = new AuditClient({ file });
    const collector = new AuditCollector({ client, agent: { id: 'planner' }, session_id: 's-1', actor: { id: 'alice' } });
    const steps = [text('thinking'), tool('search', 1), text('more'), { type: 'model_call', model: 'gpt-x', provider: 'acme' }, tool('fetch', 2)];
    const out = await collect(collector.wrap(steps));
    await client.close();
    expect(out).toEqual(steps);
    for (let i = 0; i < steps.length; i++) expect(out[i]).toBe(steps[i]);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['event_type'])).toEqual(['tool_invoked', 'model_called', 'tool_invoked']);
    expect(lines[0]).toMatchObject({ tool: { name: 'search', arguments: { i: 1 } }, agent: { id: 'planner' }, session_id: 's-1', actor: { id: 'alice' } });
    expect(lines[1]).toMatchObject({ model: { name: 'gpt-x', provider: 'acme' } });
    expect(lines[2]).toMatchObject({ tool: { name: 'fetch' } });
  });

  it("lets an event's own fields win over the context, whole", async () => {
    const sink = new ListSink();
    const collector = new AuditCollector({ client: sink, agent: { id: 'planner', name: 'Planner' }, session_id: 's-1' });
    await collect(collector.wrap([{ type: 'tool', name: 'x', agent: { id: 'billing' }, session_id: 's-2' }]));
    expect(sink.events[0]).toMatchObject({ agent: { id: 'billing' }, session_id: 's-2' });
    expect(sink.events[0]!.agent).toEqual({ id: 'billing' });
  });

  it('skips the steps toEvent answers nothing for, and takes an async toEvent', async () => {
    const sink = new ListSink();
    const collector = new AuditCollector<number>({
      client: sink,
      toEvent: async (n) => (n % 2 === 0 ? { event_type: 'even_seen', details: { n } } : n === 3 ? null : undefined),
    });
    expect(await collect(collector.wrap([1, 2, 3, 4]))).toEqual([1, 2, 3, 4]);
    expect(sink.events.map((e) => e.details?.['n'])).toEqual([2, 4]);
  });

  it('does not pull the next step, nor pass this one on, until its emit resolved (back-pressure)', async () => {
    const sink = new HandSink();
    let pulled = 0;
    async function* source(): AsyncGenerator<{ type: string; name: string }> {
      for (let i = 0; i < 3; i++) {
        pulled++;
        yield { type: 'tool_call', name: `t${i}` };
      }
    }
    const it = new AuditCollector({ client: sink }).wrap(source());
    let passed = false;
    const first = it.next().then((r) => ((passed = true), r));
    await sink.received(1);
    // let every pending callback run: the step must still be held back
    await new Promise((r) => setImmediate(r));
    expect(pulled).toBe(1);
    expect(passed).toBe(false);
    sink.calls[0]!.done.resolve({ event_id: 'a', seq: 0 });
    expect((await first).value).toEqual({ type: 'tool_call', name: 't0' });
    await new Promise((r) => setImmediate(r));
    expect(pulled).toBe(1);
    const second = it.next();
    await sink.received(2);
    expect(pulled).toBe(2);
    sink.calls[1]!.done.resolve({ event_id: 'b', seq: 1 });
    expect((await second).value).toMatchObject({ name: 't1' });
    await it.return(undefined);
    expect(pulled).toBe(2);
  });

  it('ends the stream with a rejected emit (failClosed): that step is never passed on, and the source is closed', async () => {
    const sink = new ListSink((e) => e.tool?.name === 'delete_records');
    let closed = false;
    function* source(): Generator<Record<string, unknown>> {
      try {
        yield tool('search', 1);
        yield tool('delete_records', 2);
        yield tool('after', 3);
      } finally {
        closed = true;
      }
    }
    const seen: unknown[] = [];
    const run = async () => {
      for await (const s of new AuditCollector({ client: sink }).wrap(source())) seen.push(s);
    };
    await expect(run()).rejects.toMatchObject({ code: 'client_ack_timeout' });
    expect(seen).toEqual([tool('search', 1)]);
    expect(closed).toBe(true);
    // no agent_run_failed: the source did not fail, the audit did
    expect(sink.events.map((e) => e.event_type)).toEqual(['tool_invoked']);
  });

  it('with a real failClosed client nobody answers, the step is not passed on (client_ack_timeout)', async () => {
    const client = new AuditClient({ socket: join(dir, 'nobody.sock'), failClosed: true, ackTimeoutMs: 100, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const seen: unknown[] = [];
    const run = async () => {
      for await (const s of new AuditCollector({ client }).wrap([text('a'), tool('act', 1), text('b')])) seen.push(s);
    };
    await expect(run()).rejects.toMatchObject({ code: 'client_ack_timeout' });
    expect(seen).toEqual([text('a')]);
    await client.close({ timeoutMs: 0 }).catch(() => undefined);
  });

  it('records a failing source as agent_run_failed (name and message, no stack) and re-throws the very same error', async () => {
    const sink = new ListSink();
    const boom = Object.assign(new TypeError('model returned garbage for order 551902'), { code: 'E_MODEL' });
    async function* source(): AsyncGenerator<unknown> {
      yield tool('a', 1);
      yield text('x');
      throw boom;
    }
    const collector = new AuditCollector({ client: sink, session_id: 's-err', trace_id: 'tr-1' });
    const seen: unknown[] = [];
    let caught: unknown;
    try {
      for await (const s of collector.wrap(source())) seen.push(s);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBe(boom);
    expect(seen).toHaveLength(2);
    expect(sink.events.at(-1)).toEqual({
      event_type: RUN_FAILED,
      outcome: 'error',
      session_id: 's-err',
      trace_id: 'tr-1',
      details: { error: { name: 'TypeError', code: 'E_MODEL', message: 'model returned garbage for order 551902' }, steps: 2 },
    });
    expect(JSON.stringify(sink.events.at(-1))).not.toContain('at ');
  });

  it('leaves the message out with errorMessage: false, handles a throwing sync iterable, and re-throws even when the failure event is refused', async () => {
    const sink = new ListSink((e) => e.event_type === RUN_FAILED);
    const errors: unknown[] = [];
    const collector = new AuditCollector({ client: sink, errorMessage: false, onError: (e) => errors.push(e) });
    const failing: Iterable<number> = {
      [Symbol.iterator]: () => ({
        next: () => {
          throw new RangeError('secret 4111 1111 1111 1111');
        },
      }),
    };
    await expect(collect(collector.wrap(failing))).rejects.toThrow(RangeError);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'client_ack_timeout' });
    const quiet = new ListSink();
    await expect(collect(new AuditCollector({ client: quiet, errorMessage: false }).wrap(failing))).rejects.toThrow(RangeError);
    expect(quiet.events[0]!.details).toEqual({ error: { name: 'RangeError' }, steps: 0 });
  });

  it('closes the source when the consumer stops early, and refuses a non-iterable', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<unknown> {
      try {
        yield text('1');
        yield text('2');
      } finally {
        closed = true;
      }
    }
    for await (const s of new AuditCollector({ client: new ListSink() }).wrap(source())) {
      expect(s).toEqual(text('1'));
      break;
    }
    expect(closed).toBe(true);
    const bad = new AuditCollector({ client: new ListSink() }).wrap(42 as unknown as Iterable<unknown>);
    await expect(bad.next()).rejects.toMatchObject({ name: 'ClientError', code: 'client_options_invalid', message: expect.stringContaining('wrap()') });
    expect(() => new AuditCollector({ client: {} as EventSink })).toThrow(expect.objectContaining({ code: 'client_options_invalid', message: expect.stringContaining('emit') }));
  });

  it('types each step as its source does, with toEvent omitted (wrap is generic per call)', async () => {
    async function* run(): AsyncGenerator<{ kind: 'text'; text: string }> {
      yield { kind: 'text', text: 'hi' };
    }
    const texts: string[] = [];
    for await (const step of new AuditCollector({ client: new ListSink() }).wrap(run())) texts.push(step.text);
    expect(texts).toEqual(['hi']);
  });

  it('record() emits one step and resolves with the stored seq, or undefined for a skipped one', async () => {
    const sink = new ListSink();
    const collector = new AuditCollector({ client: sink });
    expect(await collector.record(tool('a', 1))).toEqual({ event_id: 'id-1', seq: 0 });
    expect(await collector.record(text('skip me'))).toBeUndefined();
  });
});
