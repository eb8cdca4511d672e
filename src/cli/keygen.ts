import { join } from 'node:path';
import { mkdirPrivate } from '../fs/private-files.js';
import { createHmacKeyFile, createSigningKeyFiles, HMAC_KEY_FILE, SIGNER_KEY_EXT, VERIFIER_KEY_EXT } from '../keyfiles.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

export async function keygenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    name: { type: 'string', default: 'sealtrail' },
    out: { type: 'string', default: '.' },
    hmac: { type: 'boolean', default: false },
  });
  const name = values.name!;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError('--name must be 1-64 characters of A-Z a-z 0-9 . _ -');
  // Made here (0700 when new) so a bad --out is named as the flag, not as a key file.
  mkdirPrivate(values.out!, '--out');
  const skey = join(values.out!, `${name}${SIGNER_KEY_EXT}`);
  const vkeyPath = join(values.out!, `${name}${VERIFIER_KEY_EXT}`);
  const { vkey } = createSigningKeyFiles(skey, vkeyPath, name);
  // Where each file goes, by the config field that names it, so the one naming scheme is also the one wiring.
  process.stdout.write(
    `signer key:   ${skey} (mode 0600, keep secret; sidecar.keys.signing_key_file)\n` +
      `verifier key: ${vkeyPath} (mode 0600, give it to auditors and to the collector: collector.streams[].vkey_file)\n${vkey}\n`,
  );
  if (values.hmac) {
    const hmac = join(values.out!, HMAC_KEY_FILE);
    createHmacKeyFile(hmac);
    process.stdout.write(`HMAC key:     ${hmac} (mode 0600, share with the collector as a secret; sidecar.keys.hmac_key_file, collector.hmac_keys[].file)\n`);
  }
  return EXIT_OK;
}
