import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { UsageCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';

/** Exit codes shared by every command. */
export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;
/**
 * `verify`: a stream's checkpoints are signed by a key that was not given.
 * The usage code, because the fix is the command line (pass the key), and
 * because 1 must keep meaning that the evidence itself failed.
 */
export const EXIT_KEY_MISSING = EXIT_USAGE;

/** A command line that cannot run; main.ts tells it from other SealtrailErrors: the message alone, exit 2 (EXIT_USAGE). */
export class UsageError extends SealtrailError<UsageCode> {
  constructor(message: string) {
    super('usage', message);
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export const USAGE = `usage: sealtrail <command> [options]
       sealtrail --version | -V    print the version and exit

commands:
  dev       [--dir D] [--collector-listen A] [--telemetry-listen A] [--otlp-listen A] [--socket P]
                              collector + sidecar on an embedded default (state in ./.sealtrail/): tails
                              .sealtrail/traces/*.jsonl, takes OTLP/HTTP on 127.0.0.1:4318 and NDJSON
                              events on the socket .sealtrail/events.sock (--socket)
  sidecar   --config FILE     run the sidecar
  collector --config FILE     run the collector
  migrate   --config FILE     apply the collector store's pending migrations and exit (postgres: migrate_url)
  validate  --config FILE | --rules FILE... [--pseudonym-key ID=FILE]...
                              check a config file and the rule and key files it names, or rule files alone
  redact    --rules FILE... [--pseudonym-key ID=FILE]... [--format F [--mapping M]] [--explain] [--tenant T] [INPUT]
                              redact JSONL from INPUT or stdin to stdout, one line per event, as a sidecar
                              with that format (default auto) would; lines a sidecar would quarantine are
                              named on stderr and never written; exit 1 if any
  keygen    [--name N] [--out DIR] [--hmac]
                              create a signed-note Ed25519 key pair (N.skey: signer, secret; N.vkey: verifier,
                              public) and, with --hmac, hmac.key; every config and default uses these names
  token-hash [--generate]     SHA-256 of a query API token read from stdin (for collector.auth.tokens);
                              --generate prints a new random token and its hash
  verify    --db FILE | --url URL [--keys DIR] [--vkey FILE]... [--hmac-key FILE[:ID]]...
            [--checkpoint FILE]... [--token TOKEN]
                              verify a buffer, a collector store or a live collector; exit 0 when all
                              verifies, 1 naming the first failure, 2 for usage errors and when a stream's
                              checkpoints are signed by a key not given (naming the key NAME+HASH it needs)
  verify    --bundle DIR [--keys DIR] [--vkey FILE]...
                              verify an evidence bundle offline (keys pin the signers; default: bundled keys)
  export    --url URL [--token TOKEN] --bundle DIR [--keys DIR] [--vkey FILE]... [FILTERS]
                              write an evidence bundle (records, proofs, checkpoints, keys, manifest)
  query     --url URL [--token TOKEN] [FILTERS] [--order asc|desc] [--limit N] [--cursor C] [--all] [--proof]
                              GET /v1/audit as JSONL on stdout; --all follows cursors to the end
  quarantine --db FILE [--source ID] [--reason R] [--limit N] [--json]
                              lines a sidecar refused at ingest, from its buffer: when, source, position,
                              reason, field at fault, whether reported upstream (never the line's bytes)
  report    --url URL [--token TOKEN] | --db FILE  --from TIME --to TIME [--format json|html] [--out FILE]
            [--bucket SECONDS] [--silence SECONDS] [--verify ingest|full]
                              compliance report of a period (counts, denials, approvals, streams, checkpoint
                              coverage, silent periods); html is a standalone page with a chart
filters (export, query): --from TIME --to TIME --tenant T --actor A --agent A --event-type E --tool T
  --outcome O --model M --trace ID --session ID --resource ID --resource-type T --approval S
  --data-classification C --stream S
TLS (export, query, report --url, verify --url), for an https:// collector:
  --ca-file FILE                the CA that issued the collector's certificate (instead of the system roots)
  --cert-file FILE --key-file FILE
                                this client's certificate, where the collector asks for one (mTLS)
`;
