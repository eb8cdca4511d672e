import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/usage.js';
import { AdminAuth } from '../../src/collector/auth.js';
import { RateLimitedError } from '../../src/collector/rate-limit.js';
import { UnitError, parseSize, splitHostPort } from '../../src/config/units.js';
import { HttpError, SealtrailError } from '../../src/core/errors.js';
import { parseBatch } from '../../src/core/wire-batch.js';
import { readReportParams, ReportParamError } from '../../src/report/params.js';
import { formatOf, parseEventsBody, scanValue, ScanError } from '../../src/sidecar/sources/events-body.js';
import { thrown } from '../helpers/errors.js';
import { ROOT } from '../helpers/procs.js';

/**
 * Error codes are string-literal unions per domain (src/core/error-codes.ts)
 * and every error class is declared with its domain's: the compiler refuses
 * an unknown or misplaced code. The batch, query-API and events refusals are
 * one status-carrying class, HttpError; the CLI's, the unit parser's, the
 * report parameters' and the JSON scanner's errors are SealtrailErrors.
 */

const FIXTURE = join(ROOT, 'test', 'fixtures', 'typecheck', 'error-codes.ts');

/** The diagnostics of compiling the fixture with tsconfig.json's options: line (1-based) -> messages. */
function compileFixture(): Map<number, string[]> {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  // The project's ambient declarations (src/types/*.d.ts) as the build sees them; the rest comes through the fixture's imports.
  const ambient = config!.fileNames.filter((f) => f.endsWith('.d.ts'));
  const program = ts.createProgram([FIXTURE, ...ambient], { ...config!.options, noEmit: true });
  const byLine = new Map<number, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    // A diagnostic outside the fixture (in src/) is a failure of its own: keep it, at line 0.
    const line = d.file && d.file.fileName === FIXTURE.split('\\').join('/') ? d.file.getLineAndCharacterOfPosition(d.start!).line + 1 : 0;
    byLine.set(line, [...(byLine.get(line) ?? []), `${d.file?.fileName ?? ''}: ${text}`]);
  }
  return byLine;
}

describe('error codes the compiler checks', () => {
  it('refuses a misspelt, unknown or other-domain code, and compiles every known one', () => {
    const expected = new Map<number, string>();
    readFileSync(FIXTURE, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        const m = /\/\/ refused: (\w+)$/.exec(text);
        if (m) expected.set(i + 1, m[1]!);
      });
    expect(expected.size).toBeGreaterThanOrEqual(9);

    const got = compileFixture();
    // Nothing else fails to compile (a known code, or src/ itself), and each refused line fails for its code.
    expect([...got].filter(([line]) => !expected.has(line))).toEqual([]);
    for (const [line, code] of expected) {
      expect(got.get(line)?.join('\n'), `line ${line}`).toMatch(new RegExp(`"${code}".* is not assignable to`));
    }
  }, 60_000);
});

describe('HttpError: one status-carrying class for every HTTP refusal', () => {
  it('carries 422 for a malformed sealed batch (core/wire-batch.ts)', () => {
    const err = thrown(() => parseBatch({}), HttpError);
    expect(err.status).toBe(422);
    expect(err.code).toBe('batch_malformed');
    expect(err.name).toBe('HttpError');
    expect(err).toBeInstanceOf(SealtrailError);
  });

  it("carries 401 for a query without credentials (the collector's API)", () => {
    const err = thrown(() => new AdminAuth(['a'.repeat(32)]).check({ headers: {}, ip: '127.0.0.1' }), HttpError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('unauthorized');
  });

  it("carries 429 and the retry-after for a rate-limited request", () => {
    const err = new RateLimitedError('request rate limit of this token exceeded', 3);
    expect(err).toBeInstanceOf(HttpError);
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfter).toBe(3);
    expect(err.name).toBe('RateLimitedError');
  });

  it("carries 415 and 400, with the line and the event's index, for the sidecar's POST /v1/events", () => {
    const media = thrown(() => formatOf('text/plain'), HttpError);
    expect([media.status, media.code, media.line, media.index]).toEqual([415, 'content_type_unsupported', undefined, undefined]);
    const body = thrown(() => parseEventsBody(Buffer.from('{"a":1}\n[1]\n'), 'ndjson', 10), HttpError);
    expect([body.status, body.code, body.line, body.index]).toEqual([400, 'record_not_object', 2, 1]);
  });
});

describe('errors that extended Error are SealtrailErrors with a code', () => {
  it('UsageError: usage', () => {
    const err = new UsageError('report needs exactly one of --url URL or --db FILE');
    expect(err).toBeInstanceOf(SealtrailError);
    expect([err.code, err.name, err.message]).toEqual(['usage', 'UsageError', 'report needs exactly one of --url URL or --db FILE']);
  });

  it('UnitError: the config code the loader reports it with', () => {
    const size = thrown(() => parseSize('10 parsecs'), UnitError);
    expect(size).toBeInstanceOf(SealtrailError);
    expect(size.code).toBe('config_unit');
    expect(thrown(() => splitHostPort('nowhere'), UnitError).code).toBe('config_schema');
  });

  it('ReportParamError: query_invalid, naming the parameter', () => {
    const err = thrown(() => readReportParams({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }), ReportParamError);
    expect(err).toBeInstanceOf(SealtrailError);
    expect([err.code, err.param]).toEqual(['query_invalid', 'to']);
  });

  it('ScanError: json_invalid at a position', () => {
    const err = thrown(() => scanValue('{"a":}', 0), ScanError);
    expect(err).toBeInstanceOf(SealtrailError);
    expect([err.code, err.pos]).toEqual(['json_invalid', 5]);
  });
});
