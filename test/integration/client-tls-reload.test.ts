import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReloadingClientTls } from '../../src/tls/client-tls.js';
import { TlsError } from '../../src/tls/errors.js';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { startTestCollector } from '../helpers/collector-server.js';

let dir: string;
let pki: TestPki;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-ctls-'));
  pki = makeTestPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ship client TLS files', () => {
  it('cert_file without key_file is refused naming the missing key', () => {
    expect(() => new ReloadingClientTls({ cert_file: pki.podA.cert }, { field: 'sidecar.ship.tls' })).toThrow(TlsError);
    expect(() => new ReloadingClientTls({ cert_file: pki.podA.cert }, { field: 'sidecar.ship.tls' })).toThrow(/sidecar\.ship\.tls\.key_file/);
  });

  it('picks up a rotated client certificate at the next connection, keeps the old one when the new files are bad', async () => {
    const cert = join(dir, 'client.crt');
    const key = join(dir, 'client.key');
    copyFileSync(pki.podA.cert, cert);
    copyFileSync(pki.podA.key, key);
    const tls = new ReloadingClientTls({ ca_file: pki.ca.cert, cert_file: cert, key_file: key }, { field: 'sidecar.ship.tls' });
    expect(tls.refresh()).toBe(false);

    // The collector sees which certificate each new connection presents.
    const c = await startTestCollector({ tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert } });
    try {
      const presented = async (): Promise<string> =>
        new Promise((resolve, reject) => {
          tls.connect({ hostname: '127.0.0.1', host: '127.0.0.1', protocol: 'https:', port: new URL(c.url).port, servername: '' }, (err, socket) => {
            if (err) return reject(err);
            // undici's connector answers once the handshake is done.
            const s = socket as import('node:tls').TLSSocket;
            const own = s.getCertificate() as { serialNumber?: string } | null;
            s.destroy();
            resolve(own?.serialNumber ?? '');
          });
        });
      expect(await presented()).toBe(pki.podA.serial);
      copyFileSync(pki.podB.cert, cert);
      copyFileSync(pki.podB.key, key);
      expect(await presented()).toBe(pki.podB.serial);
      expect(tls.reloads).toBe(1);

      writeFileSync(cert, 'garbage');
      expect(await presented()).toBe(pki.podB.serial);
      expect(tls.failures).toBe(1);
    } finally {
      await c.close();
    }
  });
});
