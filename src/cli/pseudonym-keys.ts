/**
 * `--pseudonym-key ID=FILE` (repeatable), shared by `redact` and
 * `validate --rules`: the pseudonym keys that rules with `operator: hash`
 * name, read like the sidecar's `redaction.pseudonym_keys` (32+ random
 * bytes as base64 or hex text).
 */
import { existsSync } from 'node:fs';
import { readHmacKey } from '../keyfiles.js';
import { UsageError } from './usage.js';

export function readPseudonymKeyOptions(values: readonly string[] | undefined): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    const id = eq > 0 ? v.slice(0, eq) : '';
    const file = eq > 0 ? v.slice(eq + 1) : '';
    if (!id || !file) throw new UsageError(`--pseudonym-key ${v}: expected ID=FILE`);
    if (keys.has(id)) throw new UsageError(`--pseudonym-key ${id} given twice`);
    if (!existsSync(file)) throw new UsageError(`--pseudonym-key ${id}=${file}: no such file`);
    keys.set(id, readHmacKey(file, `--pseudonym-key (id ${id})`));
  }
  return keys;
}
