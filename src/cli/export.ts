import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseVerifierKey } from '../core/note.js';
import { exportBundle, type BundleKey } from '../evidence/build.js';
import { readVerifierKeyFile } from '../keyfiles.js';
import { checkUrl, FILTER_ARG_SPEC, filterParams, readDevToken, resolveToken } from './filters.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

const DEV_KEYS = './.sealtrail/keys';

/** Verifier keys from --keys DIR (every *.vkey) and --vkey FILE; ./.sealtrail/keys when neither is given. */
export function loadBundleKeys(keysDir: string | undefined, vkeyFiles: readonly string[]): BundleKey[] {
  const files = [...vkeyFiles];
  const dir = keysDir ?? (vkeyFiles.length === 0 && existsSync(DEV_KEYS) ? DEV_KEYS : undefined);
  if (dir !== undefined) {
    if (!existsSync(dir)) throw new UsageError(`--keys ${dir}: no such directory`);
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.vkey')) files.push(join(dir, f));
  }
  return files.map((f) => {
    try {
      const vkey = readVerifierKeyFile(f);
      return { vkey, verifier: parseVerifierKey(vkey) };
    } catch (err) {
      throw new UsageError(`${f}: not a signed-note verifier key (${(err as Error).message})`);
    }
  });
}

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
  });
  const url = checkUrl(values.url, 'export');
  if (values.bundle === undefined) throw new UsageError('export needs --bundle DIR');
  const keys = loadBundleKeys(values.keys, values.vkey as string[]);
  if (keys.length === 0) throw new UsageError('no verifier keys: pass --keys DIR (holding *.vkey files) or --vkey FILE');
  const token = resolveToken(values.token, readDevToken, 'export');
  const s = await exportBundle({ url, token, query: filterParams(values), keys, dir: values.bundle });
  process.stdout.write(
    `bundle ${values.bundle}: ${s.records} records, ${s.checkpoints} checkpoints, ${s.consistency} consistency proofs, ` +
      `${s.keys} keys, ${s.streams.length} stream(s)\n`,
  );
  return EXIT_OK;
}
