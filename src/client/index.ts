/**
 * `sealtrail/client`: the library an agent imports to send audit events to
 * its sealtrail sidecar (docs/client.md). It loads no native addon: only
 * `node:` builtins and the pure modules of src/core, so it installs and runs
 * wherever Node does.
 */
export { AuditClient } from './client.js';
export type { AuditClientOptions, CommonOptions, FileOptions, HttpOptions, SocketOptions } from './options.js';
export { CLIENT_DEFAULTS } from './options.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
export { ClientError, ConnectionError, EventRejectedError, type ClientCode } from './errors.js';
export type {
  ActorInput,
  AgentInput,
  ApprovalInput,
  ClientEvent,
  EmitResult,
  ModelInput,
  OutcomeInput,
  PolicyInput,
  ResourceInput,
  ToolInput,
} from './types.js';
export { approval, decision, modelCall, toolCall, type EventFields } from './events.js';
export { ACTOR_TYPES, OUTCOMES, type ActorType, type Outcome } from '../core/types.js';
export { AuditCollector, RUN_FAILED, type AuditCollectorOptions, type StepEvent } from './collector.js';
export { defaultStepToEvent, errorDetails, withContext, type EventContext, type EventSink } from './collector-map.js';
