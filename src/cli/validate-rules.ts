/**
 * `sealtrail validate --rules F [--rules F2 ...] [--pseudonym-key ID=FILE ...]`: checks redaction rule files
 * on their own, composed in the given order exactly as the sidecar would load
 * them (includes, disables, duplicate ids, RE2 syntax, detector options).
 * Prints the ruleset hash (the value records will carry in
 * `redaction.ruleset`) and the rule ids. A bad file exits 1 with the
 * ConfigError naming file:line:col (printed by main); 2 for usage errors.
 */
import { existsSync, statSync } from 'node:fs';
import { loadRuleset } from '../sidecar/redact/index.js';
import { readPseudonymKeyOptions } from './pseudonym-keys.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

export async function validateRulesCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    rules: { type: 'string', multiple: true },
    'pseudonym-key': { type: 'string', multiple: true },
  });
  const files = values.rules ?? [];
  if (files.length === 0) throw new UsageError('validate needs --rules FILE (repeatable) or --config FILE');
  for (const f of files) {
    if (!existsSync(f)) throw new UsageError(`--rules ${f}: no such file`);
    if (statSync(f).isDirectory()) throw new UsageError(`--rules ${f}: is a directory`);
  }
  const pseudonymKeys = readPseudonymKeyOptions(values['pseudonym-key']);
  const rs = loadRuleset(files, { pseudonymKeys });
  const ids = rs.ruleIds;
  process.stdout.write(
    `${files.join(', ')}: ok\n` +
      `  ruleset ${rs.hash}\n` +
      `  ${ids.length} rule(s)${ids.length ? `: ${ids.join(', ')}` : ''}\n`,
  );
  return EXIT_OK;
}
