/**
 * The OTLP message types, loaded once (on first use) from the official
 * definitions vendored in the package's `proto/` directory
 * (opentelemetry-proto v1.9.0). Everything else in this directory works on
 * these reflected types; nothing parses the protobuf wire format by hand.
 *
 * google.rpc.Status, the body of an OTLP/HTTP error answer, is defined here
 * by reflection with the two members OTLP uses (code, message); its third,
 * `details`, is never sent.
 *
 * Loading raises protobufjs's recursion limits (process-wide, only ever
 * upwards) to 256: at its default of 100 nested messages, an attribute
 * whose value nests about 31 kvlists could not be decoded at all, while
 * OTLP lets one nest 64 and the mapping reports deeper ones by path.
 *
 * Loading also gives the message classes protobufjs builds from then on
 * (process-wide, as the limits are) a cheaper oneof setter with the same
 * effect as its own (ownOneofSetter).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { Root, Type } from 'protobufjs';
import { SealtrailError } from '../../../core/errors.js';

/** Enough for AnyValue nested MAX_ANY_DEPTH deep (three messages a level) inside a span event. */
const RECURSION_LIMIT = 256;

const FILES = ['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto'];

export interface OtlpTypes {
  traceRequest: Type;
  traceResponse: Type;
  logsRequest: Type;
  logsResponse: Type;
  anyValue: Type;
  status: Type;
}

let loaded: OtlpTypes | undefined;

export function otlpTypes(): OtlpTypes {
  return (loaded ??= load());
}

/**
 * The directory holding `opentelemetry/proto/...`: the package root's
 * `proto/`, found by walking up from this module (src/… under vitest,
 * dist/src/… once built), so neither layout's depth is hard-coded.
 */
function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 12; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'opentelemetry', 'proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new SealtrailError(
    'package_incomplete',
    'the OTLP definitions (proto/opentelemetry/proto) were not found above the sealtrail module directory; the package is incomplete: reinstall sealtrail',
  );
}

/**
 * protobufjs's oneof setter, which its decoder calls for every AnyValue
 * (eleven a typical span), deletes each other member of the oneof whether
 * or not the message has it; a delete of an absent property is a runtime
 * call in V8, and those calls were a third of decoding a span. This one
 * deletes only the members the message holds as its own properties, which
 * leaves every message exactly as protobufjs's would (deleting a property
 * a message does not own changes nothing). The classes take their setter
 * when protobufjs builds them, so it is installed before the types load.
 */
function ownOneofSetter(fieldNames: string[]): protobuf.OneOfSetter {
  return function (this: object, name: string | undefined): void {
    for (const field of fieldNames) if (field !== name && Object.hasOwn(this, field)) delete (this as Record<string, unknown>)[field];
  };
}

function load(): OtlpTypes {
  protobuf.util.recursionLimit = Math.max(protobuf.util.recursionLimit, RECURSION_LIMIT);
  protobuf.Reader.recursionLimit = Math.max(protobuf.Reader.recursionLimit, RECURSION_LIMIT);
  Object.assign(protobuf.util, { oneOfSetter: ownOneofSetter });

  const base = protoDir();
  const root: Root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(base, target);
  root.loadSync(FILES, { keepCase: false });

  const status = new protobuf.Type('Status')
    .add(new protobuf.Field('code', 1, 'int32'))
    .add(new protobuf.Field('message', 2, 'string'));
  root.define('google.rpc').add(status);
  root.resolveAll();

  return {
    traceRequest: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    traceResponse: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    logsRequest: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
    logsResponse: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
    anyValue: root.lookupType('opentelemetry.proto.common.v1.AnyValue'),
    status: root.lookupType('google.rpc.Status'),
  };
}
