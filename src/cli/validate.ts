import { existsSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { SealtrailError } from '../core/errors.js';
import { collectorOptionsFromConfig } from '../collector/from-config.js';
import { StreamKeys } from '../collector/stream-keys.js';
import { readHmacKey, readPseudonymKeys, readSigningKey } from '../keyfiles.js';
import { formatFor } from '../sidecar/formats/for-source.js';
import { loadRuleset } from '../sidecar/redact/index.js';
import { EXIT_OK, parse, UsageError } from './usage.js';
import { validateRulesCommand } from './validate-rules.js';
import { readClientMaterial, readServerMaterial } from '../tls/material.js';

/**
 * Checks a config file the way the programs would load it: schema, units and
 * env references, then every rule file and key file it names. Key files that
 * do not exist yet are reported as missing, not read.
 */
export async function validateCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    rules: { type: 'string', multiple: true },
    'pseudonym-key': { type: 'string', multiple: true },
  });
  if (values.rules) {
    if (values.config) throw new UsageError('validate takes --config FILE or --rules FILE..., not both');
    return validateRulesCommand(argv);
  }
  if (!values.config) throw new UsageError('validate needs --config FILE or --rules FILE');
  if (!existsSync(values.config)) throw new UsageError(`--config ${values.config}: no such file`);
  const cfg = loadConfigFile(values.config);
  const lines: string[] = [];
  if (cfg.sidecar) {
    const rs = loadRuleset(cfg.sidecar.redaction.rules, {
      pseudonymKeys: readPseudonymKeys(cfg.sidecar.redaction.pseudonym_keys),
    });
    // Mapping files are read now, as the sidecar reads them at start: a broken one names its file:line:col.
    let mappings = 0;
    for (const src of cfg.sidecar.sources) {
      if (src.type !== 'otlp' && src.format === 'mapped') {
        formatFor(src, process.cwd());
        mappings++;
      }
    }
    lines.push(
      `sidecar: ${cfg.sidecar.sources.length} source(s), ${mappings ? `${mappings} mapping(s), ` : ''}${rs.ruleIds.length} redaction rule(s), ruleset ${rs.hash}`,
    );
    readSigningKey(cfg.sidecar.keys.signing_key_file);
    readHmacKey(cfg.sidecar.keys.hmac_key_file);
    // TLS files are checked as at start: readable PEM, key matching its certificate.
    if (cfg.sidecar.ship.tls) readClientMaterial(cfg.sidecar.ship.tls, 'sidecar.ship.tls');
  }
  if (cfg.collector) {
    // The same reading and parsing the collector does at start: every key file
    // (single-key and rotation `keys:` forms), token file and HMAC key.
    const opts = collectorOptionsFromConfig(cfg.collector);
    try {
      new StreamKeys(opts.streams);
    } catch (err) {
      // as the collector reports it at start
      throw new SealtrailError('collector_options_invalid', (err as Error).message, { cause: err });
    }
    if (cfg.collector.tls) readServerMaterial(cfg.collector.tls, 'collector.tls');
    // The read-audit keys (docs/read-audit.md); an absent hmac_key_file is generated at start, not read here.
    const own = cfg.collector.keys;
    if (own) {
      readSigningKey(own.signing_key_file, 'signing key file (collector.keys.signing_key_file)');
      if (own.hmac_key_file !== undefined) readHmacKey(own.hmac_key_file, 'HMAC key file (collector.keys.hmac_key_file)');
    }
    lines.push(`collector: store ${cfg.collector.store.type}, ${cfg.collector.streams.length} stream key(s)`);
  }
  process.stdout.write(`${values.config}: ok\n${lines.map((l) => `  ${l}\n`).join('')}`);
  return EXIT_OK;
}
