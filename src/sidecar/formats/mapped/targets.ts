/**
 * What a mapping may write: sealtrail's input fields (docs/events.md), by the
 * dotted name the mapping file uses (`actor.id`, `details.entry_hash`).
 *
 * Contracts:
 * - parseTarget accepts the input fields only and refuses the names the
 *   sidecar owns (id, stream, seq, received_at, source, redaction), so a
 *   mapping cannot even try to forge them; it returns the reason otherwise.
 * - Each target says which JSON type it takes: `string` fields (ids, names,
 *   event_type, …), `enum` fields (outcome, actor.type) with their values,
 *   `object` (`details`, merged) and `any` (tool.arguments, details.*, and
 *   other members of the groups, which the record keeps as they are).
 */
import { ACTOR_TYPES, OUTCOMES } from '../../../core/types.js';

export type TargetKind = 'string' | 'enum' | 'object' | 'any';

export interface Target {
  /** as written in the mapping: `actor.id` */
  readonly text: string;
  readonly segments: readonly string[];
  readonly kind: TargetKind;
  readonly values?: readonly string[];
}

const TOP_STRINGS = ['event_type', 'time', 'tenant', 'action', 'trace_id', 'span_id', 'session_id', 'data_classification'];
export const SIDECAR_OWNED = ['id', 'stream', 'seq', 'received_at', 'source', 'redaction'];

/** The groups and their members that must be strings; other members keep any JSON value. */
const GROUPS: Record<string, readonly string[]> = {
  actor: ['id'],
  agent: ['id', 'name'],
  tool: ['name'],
  resource: ['type', 'id'],
  approval: ['status', 'approver'],
  policy: ['decision', 'rule'],
  model: ['provider', 'name'],
};

const MEMBER = /^[a-z][a-z0-9_]{0,63}$/;
const DETAILS_MEMBER = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_DETAILS_DEPTH = 8;

export const TARGET_HELP =
  'event_type, time, tenant, action, outcome, trace_id, span_id, session_id, data_classification, ' +
  'actor.id, actor.type, agent.*, tool.name, tool.arguments, tool.*, resource.*, approval.*, policy.*, model.*, details, details.*';

export function parseTarget(text: string): Target | string {
  const segments = text.split('.');
  const head = segments[0]!;
  if (segments.length === 1) {
    if (TOP_STRINGS.includes(head)) return { text, segments, kind: 'string' };
    if (head === 'outcome') return { text, segments, kind: 'enum', values: OUTCOMES };
    if (head === 'details') return { text, segments, kind: 'object' };
    if (SIDECAR_OWNED.includes(head)) return `"${head}" is set by the sidecar and cannot be mapped (map the input's ${head} to details.${head})`;
    if (Object.hasOwn(GROUPS, head)) return `map the members of ${head} (${head}.${GROUPS[head]![0]}, …), not ${head} itself`;
    return `not a sealtrail field (targets: ${TARGET_HELP})`;
  }
  if (head === 'details') {
    const rest = segments.slice(1);
    if (rest.length > MAX_DETAILS_DEPTH) return `details.* targets are at most ${MAX_DETAILS_DEPTH} levels deep`;
    if (!rest.every((s) => DETAILS_MEMBER.test(s))) return 'details.* member names are 1-64 of A-Z a-z 0-9 _ -';
    return { text, segments, kind: 'any' };
  }
  if (!Object.hasOwn(GROUPS, head)) {
    if (SIDECAR_OWNED.includes(head)) return `"${head}" is set by the sidecar and cannot be mapped`;
    return `not a sealtrail field (targets: ${TARGET_HELP})`;
  }
  if (segments.length !== 2 || !MEMBER.test(segments[1]!)) {
    return `${head}.<member>: one member name of a-z, 0-9 and _ (use details.* for anything deeper)`;
  }
  const member = segments[1]!;
  if (head === 'actor' && member === 'type') return { text, segments, kind: 'enum', values: ACTOR_TYPES };
  if (GROUPS[head]!.includes(member)) return { text, segments, kind: 'string' };
  return { text, segments, kind: 'any' };
}

/** The member a group needs once any member of it is set: actor.id, tool.name. */
export const GROUP_REQUIRED: Record<string, string> = { actor: 'id', tool: 'name' };

/**
 * True when `value` has the JSON type `target` takes. A mapping's own
 * constants must be standard `outcome` / `actor.type` values (`standard`);
 * a value read from a line need not be: like any event's, it is kept as
 * written (docs/events.md), so an unexpected status never costs a record.
 */
export function fitsTarget(target: Target, value: unknown, standard = true): boolean {
  switch (target.kind) {
    case 'string':
      return typeof value === 'string';
    case 'enum':
      return typeof value === 'string' && (!standard || target.values!.includes(value));
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'any':
      return true;
  }
}

export function expectedText(target: Target): string {
  switch (target.kind) {
    case 'string':
      return 'a string';
    case 'enum':
      return `one of ${target.values!.join('|')}`;
    case 'object':
      return 'an object';
    case 'any':
      return 'a JSON value';
  }
}
