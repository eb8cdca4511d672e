/**
 * `sealtrail/client/langchain`: a LangChain.js callback handler that records
 * tool runs, model calls and agent runs as audit events, with no change to
 * the chain:
 *
 *   const audit = new SealtrailCallbackHandler({ client });
 *   await agent.invoke(input, { callbacks: [audit], metadata: { thread_id } });
 *
 * A separate entry point because it extends @langchain/core's
 * BaseCallbackHandler at run time: only LangChain users load it.
 *
 * By default a handler only starts its emits and returns: LangChain runs
 * callbacks in a background queue, and awaiting acks there would let that
 * queue grow without bound; the client's bounded queue holds them instead,
 * and failures go to onError. With `failClosed: true` the handler is
 * awaited and may throw into the run (LangChain's raiseError): a tool or
 * model call starts only once every earlier event is stored, and a run's
 * end fails if its event could not be stored (docs/client.md).
 */
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import type { Serialized } from '@langchain/core/load/serializable';
import type { BaseMessage } from '@langchain/core/messages';
import type { LLMResult } from '@langchain/core/outputs';
import type { ChainValues } from '@langchain/core/utils/types';
import { isPlainObject } from '../../core/plain-object.js';
import { errorDetails } from '../collector-map.js';
import { approval } from '../events.js';
import type { ClientEvent } from '../types.js';
import { adapterSettings, compact, EmitTracker, jsonSafe, parseJsonText, str, type AdapterOptions } from './shared.js';

type Meta = Record<string, unknown>;

/** What decides whether a chain run is an agent run. */
export interface ChainRunInfo {
  name: string;
  runType: string | undefined;
  parentRunId: string | undefined;
  tags: string[];
  metadata: Meta;
}

export interface LangChainOptions extends AdapterOptions {
  /** Await every emit and let a failure stop the run (LangChain raiseError); default false. */
  failClosed?: boolean;
  /**
   * Which chain runs are agent runs, recorded as `agent_invoked` and naming
   * the agent of the runs inside them: `'root'` (default: the outermost run
   * the handler sees), `'none'`, or a predicate.
   */
  agentRuns?: 'root' | 'none' | ((run: ChainRunInfo) => boolean);
  /** Keep a model call's messages and generations under details (default false: bulky). */
  modelContent?: boolean;
}

interface RunInfo {
  kind: 'tool' | 'model' | 'chain';
  name: string;
  time: string;
  traceId: string;
  parentRunId: string | undefined;
  session: string | undefined;
  /** the agent run this one belongs to (its own name if it is one) */
  agent: string | undefined;
  isAgent: boolean;
  fields: Partial<ClientEvent>;
  details: Meta;
}

const SESSION_KEYS = ['session_id', 'thread_id', 'conversation_id'];
const MAX_OPEN_RUNS = 10_000;

const nameOf = (s: Serialized | undefined, runName: string | undefined): string =>
  runName ?? str((s as { name?: unknown } | undefined)?.name) ?? (Array.isArray(s?.id) ? String(s.id[s.id.length - 1]) : 'unknown');

export class SealtrailCallbackHandler extends BaseCallbackHandler {
  name = 'sealtrail';
  private readonly tracker: EmitTracker;
  private readonly runs = new Map<string, RunInfo>();
  private readonly failClosed: boolean;
  private readonly agentRuns: NonNullable<LangChainOptions['agentRuns']>;
  private readonly modelContent: boolean;
  private readonly errorMessage: boolean;

  constructor(options: LangChainOptions) {
    // raiseError makes LangChain await the handler and re-throw what it throws; otherwise LangChain's defaults
    super(options?.failClosed === true ? { raiseError: true, _awaitHandler: true } : {});
    ({ tracker: this.tracker, modelContent: this.modelContent, errorMessage: this.errorMessage } = adapterSettings('SealtrailCallbackHandler', options));
    this.failClosed = options.failClosed === true;
    this.agentRuns = options.agentRuns ?? 'root';
  }

  get lastError(): unknown {
    return this.tracker.lastError;
  }

  get failures(): number {
    return this.tracker.failures;
  }

  /** Resolves once every event so far is stored; rejects with the first failure not yet reported here. */
  audited(): Promise<void> {
    return this.tracker.audited();
  }

  /** Resolves once every event sent so far has settled; never rejects. */
  flush(): Promise<void> {
    return this.tracker.flush();
  }

  // LangChain calls handleChainStart with (…, runId, parentRunId, tags, metadata, runType, runName),
  // not in the order its declaration says; this follows the call (and BaseTracer).
  override async handleChainStart(chain: Serialized, _inputs: ChainValues, runId: string, parentRunId?: string, tags?: string[], metadata?: Meta, runType?: string, runName?: string): Promise<void> {
    const name = nameOf(chain, runName);
    const info: ChainRunInfo = { name, runType, parentRunId, tags: tags ?? [], metadata: metadata ?? {} };
    const isAgent = this.agentRuns === 'root' ? parentRunId === undefined : this.agentRuns === 'none' ? false : this.agentRuns(info);
    this.start(runId, parentRunId, 'chain', name, metadata, { isAgent });
  }

  override async handleChainEnd(_outputs: ChainValues, runId: string): Promise<void> {
    await this.end(runId, undefined);
  }

  override async handleChainError(err: unknown, runId: string): Promise<void> {
    await this.end(runId, err);
  }

  override async handleToolStart(tool: Serialized, input: string, runId: string, parentRunId?: string, _tags?: string[], metadata?: Meta, runName?: string, toolCallId?: string): Promise<void> {
    const name = nameOf(tool, runName);
    this.start(runId, parentRunId, 'tool', name, metadata, { fields: { tool: compact({ name, arguments: parseJsonText(input), call_id: toolCallId }) } });
    if (this.failClosed) await this.tracker.gate(this.runs.get(runId)?.traceId);
  }

  override async handleToolEnd(output: unknown, runId: string): Promise<void> {
    // a tool invoked with a tool call answers with a ToolMessage: its content is the result
    const message = typeof output === 'object' && output !== null && 'content' in output && 'tool_call_id' in output;
    const content = message ? (output as { content?: unknown }).content : output;
    await this.end(runId, undefined, { output: parseJsonText(jsonSafe(content)) });
  }

  override async handleToolError(err: unknown, runId: string): Promise<void> {
    await this.end(runId, err);
  }

  override async handleChatModelStart(llm: Serialized, messages: BaseMessage[][], runId: string, parentRunId?: string, extraParams?: Meta, _tags?: string[], metadata?: Meta, runName?: string): Promise<void> {
    this.modelStart(llm, this.modelContent ? jsonSafe(messages) : undefined, runId, parentRunId, extraParams, metadata, runName);
    if (this.failClosed) await this.tracker.gate(this.runs.get(runId)?.traceId);
  }

  override async handleLLMStart(llm: Serialized, prompts: string[], runId: string, parentRunId?: string, extraParams?: Meta, _tags?: string[], metadata?: Meta, runName?: string): Promise<void> {
    this.modelStart(llm, this.modelContent ? prompts : undefined, runId, parentRunId, extraParams, metadata, runName);
    if (this.failClosed) await this.tracker.gate(this.runs.get(runId)?.traceId);
  }

  override async handleLLMEnd(output: LLMResult, runId: string): Promise<void> {
    const first = output.generations?.[0]?.[0] as { message?: { usage_metadata?: unknown; tool_calls?: Array<{ name?: unknown; id?: unknown }> } } | undefined;
    const llmOut = isPlainObject(output.llmOutput) ? output.llmOutput : {};
    const calls = first?.message?.tool_calls?.map((c) => compact({ name: str(c.name), id: str(c.id) }));
    await this.end(runId, undefined, {
      usage: jsonSafe(llmOut['tokenUsage'] ?? llmOut['usage'] ?? first?.message?.usage_metadata),
      tool_calls: calls && calls.length > 0 ? calls : undefined,
      output: this.modelContent ? jsonSafe(output.generations) : undefined,
    });
  }

  override async handleLLMError(err: unknown, runId: string): Promise<void> {
    await this.end(runId, err);
  }

  /** dispatchCustomEvent('approval', { status, approver, action?, tool? }) records an approval. */
  override async handleCustomEvent(eventName: string, data: unknown, runId: string): Promise<void> {
    if (eventName !== 'approval' || !isPlainObject(data)) return;
    const run = this.runs.get(runId);
    const status = str(data['status']) ?? 'requested';
    const event = approval({
      // not a run of its own: no span id, the run it was dispatched from as its parent
      ...this.common(run, undefined),
      details: { parent_span_id: runId },
      approval: compact({ status, approver: str(data['approver']) }),
      action: str(data['action']),
      ...(isPlainObject(data['tool']) && str(data['tool']['name']) ? { tool: data['tool'] as { name: string } } : {}),
    });
    await this.send(event, true);
  }

  private modelStart(llm: Serialized, input: unknown, runId: string, parentRunId: string | undefined, extraParams: Meta | undefined, metadata: Meta | undefined, runName: string | undefined): void {
    const params = isPlainObject(extraParams?.['invocation_params']) ? extraParams['invocation_params'] : {};
    const model = str(metadata?.['ls_model_name']) ?? str(params['model']) ?? str(params['model_name']);
    const provider = str(metadata?.['ls_provider']);
    this.start(runId, parentRunId, 'model', nameOf(llm, runName), metadata, {
      fields: { model: compact({ name: model, provider }), action: nameOf(llm, runName) },
      details: compact({ input }),
    });
  }

  private start(runId: string, parentRunId: string | undefined, kind: RunInfo['kind'], name: string, metadata: Meta | undefined, more: { isAgent?: boolean; fields?: Partial<ClientEvent>; details?: Meta }): void {
    const parent = parentRunId === undefined ? undefined : this.runs.get(parentRunId);
    const meta = metadata ?? {};
    const session = SESSION_KEYS.map((k) => str(meta[k])).find((v) => v !== undefined) ?? parent?.session;
    const isAgent = more.isAgent === true;
    // bounded: a run LangChain never ends (an abandoned stream) must not make this grow for ever
    if (this.runs.size >= MAX_OPEN_RUNS) this.runs.delete(this.runs.keys().next().value as string);
    this.runs.set(runId, {
      kind,
      name,
      time: new Date().toISOString(),
      // LangChain's trace is the tree under a root run, named by that run's id
      traceId: parent?.traceId ?? parentRunId ?? runId,
      parentRunId,
      session,
      // LangChain's createAgent names its agent in the (inherited) metadata
      agent: str(meta['lc_agent_name']) ?? (isAgent ? name : parent?.agent),
      isAgent,
      fields: more.fields ?? {},
      details: more.details ?? {},
    });
  }

  private common(run: RunInfo | undefined, spanId: string | undefined): Omit<ClientEvent, 'event_type'> {
    return compact({
      trace_id: run?.traceId,
      span_id: spanId,
      session_id: run?.session,
      agent: run?.agent === undefined ? undefined : { name: run.agent },
    });
  }

  /**
   * Emits the event for a run that ended (a chain run only if it is an agent
   * run) and forgets the run. After an error the emit may fail quietly: the
   * run's own error must not be replaced with the audit's.
   */
  private async end(runId: string, err: unknown, details: Meta = {}): Promise<void> {
    const run = this.runs.get(runId);
    this.runs.delete(runId);
    if (!run) return;
    try {
      if (run.kind !== 'chain' || run.isAgent) await this.send(this.endEvent(run, runId, err, details), err === undefined);
    } finally {
      // the root run is over: a failure in its trace stops nothing any more
      if (run.parentRunId === undefined) this.tracker.forgetTrace(run.traceId);
    }
  }

  private endEvent(run: RunInfo, runId: string, err: unknown, details: Meta): ClientEvent {
    const failed = err !== undefined;
    return {
      ...this.common(run, runId),
      time: run.time,
      ...run.fields,
      event_type: run.kind === 'tool' ? 'tool_invoked' : run.kind === 'model' ? 'model_called' : 'agent_invoked',
      outcome: failed ? 'error' : 'success',
      details: compact({ parent_span_id: run.parentRunId, ended_at: new Date().toISOString(), ...run.details, ...details, error: failed ? errorDetails(err, { message: this.errorMessage }) : undefined }),
    };
  }

  /** failClosed: await the emit and, where `mayThrow`, let its failure stop the run. Otherwise start it and return. */
  private async send(event: ClientEvent, mayThrow: boolean): Promise<void> {
    if (!this.failClosed) {
      void this.tracker.emit(event);
      return;
    }
    if (mayThrow) await this.tracker.send(event, { rethrown: true });
    else await this.tracker.emit(event);
  }
}
