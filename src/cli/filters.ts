import { readFileSync } from 'node:fs';
import { UsageError } from './usage.js';

/** Command-line filter options and the GET /v1/audit parameters they set. */
export const FILTER_OPTIONS: readonly (readonly [option: string, param: string])[] = [
  ['from', 'from'],
  ['to', 'to'],
  ['tenant', 'tenant'],
  ['actor', 'actor'],
  ['agent', 'agent'],
  ['event-type', 'event_type'],
  ['tool', 'tool'],
  ['outcome', 'outcome'],
  ['model', 'model'],
  ['trace', 'trace_id'],
  ['session', 'session_id'],
  ['resource', 'resource'],
  ['resource-type', 'resource_type'],
  ['approval', 'approval'],
  ['data-classification', 'data_classification'],
  ['stream', 'stream'],
];

export const FILTER_ARG_SPEC = Object.fromEntries(FILTER_OPTIONS.map(([o]) => [o, { type: 'string' as const }])) as Record<
  string,
  { type: 'string' }
>;

/** The API parameters of the filter options given. */
export function filterParams(values: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [o, p] of FILTER_OPTIONS) {
    const v = values[o];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${o} needs a value`);
    out[p] = v;
  }
  return out;
}

/** --token, then SEALTRAIL_ADMIN_TOKEN, then the dev token file. */
export function resolveToken(arg: string | undefined, command: string): string {
  const token = arg ?? process.env.SEALTRAIL_ADMIN_TOKEN ?? readDevToken();
  if (!token) throw new UsageError(`${command} needs a token: --token, SEALTRAIL_ADMIN_TOKEN or ./.sealtrail/admin.token`);
  return token;
}

export function checkUrl(url: string | undefined, command: string): string {
  if (url === undefined) throw new UsageError(`${command} needs --url URL`);
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url ${url}: not a URL`);
  }
  return url;
}

function readDevToken(): string | undefined {
  try {
    return readFileSync('./.sealtrail/admin.token', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
