import { exportBundle } from '../evidence/build.js';
import { TLS_ARG_SPEC, useCollectorTls } from './collector-tls.js';
import { checkUrl, FILTER_ARG_SPEC, filterParams, resolveToken } from './filters.js';
import { loadVerifierKeys, NO_VERIFIER_KEYS } from './keys.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

/**
 * sealtrail export --url URL [--token T] --bundle DIR [--keys DIR] [--vkey FILE]... [filters]
 *
 * Writes an evidence bundle (docs/evidence.md) of the records the filters
 * select, checkable offline by `sealtrail verify --bundle DIR`. The token must
 * be an admin token (consistency proofs span tenants). The collector does not
 * publish its verifier keys, so they come from --keys/--vkey (as for verify).
 */
export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    url: { type: 'string' },
    token: { type: 'string' },
    bundle: { type: 'string' },
    keys: { type: 'string' },
    vkey: { type: 'string', multiple: true, default: [] },
    ...FILTER_ARG_SPEC,
    ...TLS_ARG_SPEC,
  });
  const url = checkUrl(values.url, 'export');
  if (values.bundle === undefined) throw new UsageError('export needs --bundle DIR');
  const keys = loadVerifierKeys(values.keys, values.vkey!);
  if (keys.length === 0) throw new UsageError(NO_VERIFIER_KEYS);
  const token = resolveToken(values.token, 'export');
  useCollectorTls(values, url);
  const s = await exportBundle({ url, token, query: filterParams(values), keys, dir: values.bundle });
  process.stdout.write(
    `bundle ${values.bundle}: ${s.records} records, ${s.checkpoints} checkpoints, ${s.consistency} consistency proofs, ` +
      `${s.keys} keys, ${s.streams.length} stream(s)\n`,
  );
  return EXIT_OK;
}
