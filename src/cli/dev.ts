import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCollectorFromConfig } from '../collector/from-config.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../config/load.js';
import { mkdirPrivate, writeFilePrivate } from '../fs/private-files.js';
import { ensureKeyFiles, HMAC_KEY_FILE, readSecretText, SIGNER_KEY_EXT, VERIFIER_KEY_EXT } from '../keyfiles.js';
import { createLogger } from '../log.js';
import { startSidecar } from '../sidecar/sidecar.js';
import { drainDeadline, onStopSignal } from './signals.js';
import { parse, UsageError } from './usage.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function adminToken(dir: string): { token: string; from: string } {
  const env = process.env.SEALTRAIL_ADMIN_TOKEN;
  if (env !== undefined) {
    if (env.length < 16) throw new UsageError('SEALTRAIL_ADMIN_TOKEN must be at least 16 characters');
    return { token: env, from: 'SEALTRAIL_ADMIN_TOKEN' };
  }
  const file = join(dir, 'admin.token');
  if (existsSync(file)) return { token: readSecretText(file, 'admin token file'), from: file };
  const token = randomBytes(24).toString('base64url');
  writeFilePrivate(file, `${token}\n`, 'admin token file');
  return { token, from: `${file} (new)` };
}

/**
 * The dev sidecar's key files in `keys`: sidecar.skey and sidecar.vkey, the
 * names `sealtrail keygen --name sidecar` gives and config/dev.yaml expects.
 * A directory holding only the dev.key / dev.vkey an older config/dev.yaml
 * named keeps them (`legacy`), so what was signed with that key still
 * verifies; the banner says to rename them.
 */
export function devKeyFiles(keys: string): { skey: string; vkey: string; hmac: string; legacy: boolean } {
  const hmac = join(keys, HMAC_KEY_FILE);
  const current = { skey: join(keys, `sidecar${SIGNER_KEY_EXT}`), vkey: join(keys, `sidecar${VERIFIER_KEY_EXT}`), hmac };
  const old = { skey: join(keys, 'dev.key'), vkey: join(keys, `dev${VERIFIER_KEY_EXT}`), hmac };
  if (!existsSync(current.skey) && existsSync(old.skey)) return { ...old, legacy: true };
  return { ...current, legacy: false };
}

/**
 * `npm start`: collector and sidecar in one process on an embedded default,
 * all state under ./.sealtrail/. The sidecar takes trace files, OTLP/HTTP
 * and the Unix socket ./.sealtrail/events.sock. Ctrl-C drains the sidecar (seal and ship what
 * was read), then stops the collector, and exits 0.
 */
export async function devCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    dir: { type: 'string', default: '.sealtrail' },
    'collector-listen': { type: 'string', default: '127.0.0.1:7470' },
    'telemetry-listen': { type: 'string', default: '127.0.0.1:9470' },
    'otlp-listen': { type: 'string', default: '127.0.0.1:4318' },
    socket: { type: 'string' },
  });
  const dir = values.dir!;
  // Where an agent's AuditClient connects (docs/client.md); under --dir unless given.
  const socket = values.socket ?? join(dir, 'events.sock');
  const keys = join(dir, 'keys');
  for (const d of [dir, keys, join(dir, 'traces')]) mkdirPrivate(d, '--dir');
  const { legacy, ...files } = devKeyFiles(keys);
  const created = ensureKeyFiles({ ...files, name: 'sealtrail-dev' });
  // The collector's own key signs its read-audit stream (docs/read-audit.md); its
  // .vkey sits in the keys directory, so `sealtrail verify --url` checks that stream too.
  const collectorKey = { skey: join(keys, `collector${SIGNER_KEY_EXT}`), vkey: join(keys, `collector${VERIFIER_KEY_EXT}`), hmac: files.hmac };
  ensureKeyFiles({ ...collectorKey, name: 'sealtrail-dev-collector' });
  const { token, from } = adminToken(dir);
  const listen = values['collector-listen']!;

  const collectorCfg = defaultCollectorConfig({
    listen,
    store: { type: 'sqlite', path: join(dir, 'collector', 'audit.db') },
    auth: { admin_tokens: [token] },
    streams: [{ match: '*', vkey_file: files.vkey }],
    trust_on_first_use: true,
    hmac_keys: [{ id: 'k1', file: files.hmac }],
    keys: { signing_key_file: collectorKey.skey, hmac_key_file: files.hmac, hmac_key_id: 'k1' },
  });
  const sidecarCfg = defaultSidecarConfig({
    stream: { name: 'dev' },
    data_dir: join(dir, 'sidecar'),
    // Trace files in any format auto recognises, and what OpenTelemetry exporters send.
    sources: [
      { id: 'traces', type: 'file', include: [join(dir, 'traces', '*.jsonl')] },
      { id: 'otlp', type: 'otlp', listen: values['otlp-listen']! },
      { id: 'socket', type: 'socket', path: socket },
    ],
    redaction: { rules: [join(PACKAGE_ROOT, 'config', 'redaction', 'pii-basic.yaml')] },
    keys: { signing_key_file: files.skey, hmac_key_file: files.hmac, hmac_key_id: 'k1' },
    ship: { url: `http://${listen}` },
    telemetry: { listen: values['telemetry-listen']! },
  });

  const logger = createLogger('dev');
  if (created) logger.info({ keys }, 'generated dev signing and HMAC keys');
  const collector = await startCollectorFromConfig(collectorCfg, logger.child({ component: 'collector' }));
  let sidecar;
  try {
    sidecar = await startSidecar(sidecarCfg, { logger: logger.child({ component: 'sidecar' }) });
  } catch (err) {
    await collector.shutdown();
    throw err;
  }
  process.on('SIGHUP', () => sidecar.reload());

  const url = collector.running.url;
  process.stdout.write(
    [
      'sealtrail dev is running',
      `  collector     ${url}   (store ${collectorCfg.store.path})`,
      `  sidecar       stream ${sidecar.stream}, tailing ${join(dir, 'traces', '*.jsonl')} (sealtrail, OTLP/JSON or CloudEvents lines)`,
      `  otlp          http://${values['otlp-listen']!}   (OTLP/HTTP: /v1/traces, /v1/logs; protobuf or JSON)`,
      `  socket        ${socket}   (NDJSON events, each answered once durable: new AuditClient({ socket }) from sealtrail/client)`,
      `  telemetry     ${sidecar.telemetryUrl}/metrics  /healthz  /readyz`,
      `  verifier key  ${files.vkey}`,
      ...(legacy ? [`                (older names: rename ${files.skey} and ${files.vkey} to sidecar${SIGNER_KEY_EXT} and sidecar${VERIFIER_KEY_EXT})`] : []),
      `  admin token   ${token}   (from ${from})`,
      '',
      'try:',
      `  echo '{"event_type":"tool_invoked","actor":{"id":"u1","type":"user"},"tool":{"name":"search","arguments":{"q":"mail bob@example.com"}}}' >> ${join(dir, 'traces', 'agent.jsonl')}`,
      `  OTEL_EXPORTER_OTLP_ENDPOINT=http://${values['otlp-listen']!}   (for an agent that exports OpenTelemetry)`,
      `  curl -s -H "Authorization: Bearer ${token}" '${url}/v1/audit?limit=5'`,
      `  npx sealtrail verify --url ${url}`,
      'Ctrl-C drains and stops.',
      '',
    ].join('\n'),
  );

  return onStopSignal(async (signal) => {
    logger.info({ signal }, 'draining');
    await sidecar.shutdown(drainDeadline());
    await collector.shutdown();
  });
}
