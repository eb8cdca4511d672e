import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devKeyFiles } from '../../src/cli/dev.js';
import { parseConfigText } from '../../src/config/index.js';
import { ROOT, runCli } from '../helpers/procs.js';

/**
 * One key file naming scheme everywhere: `sealtrail keygen --name N` writes
 * N.skey and N.vkey (and hmac.key), `sealtrail dev` uses those names, and
 * every config, manifest and doc names signing keys *.skey and verifier
 * keys *.vkey.
 */
const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-key-naming-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('key file names', () => {
  it('config/dev.yaml validates against what keygen writes, under the names sealtrail dev uses', async () => {
    const cwd = join(tmp, 'work');
    mkdirSync(cwd);
    // config/dev.yaml's paths are relative to the working directory, rule files included
    symlinkSync(join(ROOT, 'config'), join(cwd, 'config'));
    const keys = join(cwd, '.sealtrail', 'keys');
    const gen = await runCli(['keygen', '--name', 'sidecar', '--out', keys, '--hmac'], { cwd });
    expect(gen.code, gen.stderr).toBe(0);
    expect(readdirSync(keys).sort()).toEqual(['hmac.key', 'sidecar.skey', 'sidecar.vkey']);
    const r = await runCli(['validate', '--config', 'config/dev.yaml'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const cfg = parseConfigText(readFileSync(join(ROOT, 'config', 'dev.yaml'), 'utf8'), 'dev.yaml', {});
    const dev = devKeyFiles('./.sealtrail/keys');
    expect(join(cfg.sidecar!.keys.signing_key_file)).toBe(dev.skey);
    expect(join(cfg.sidecar!.keys.hmac_key_file)).toBe(dev.hmac);
    expect(join(cfg.collector!.streams[0]!.vkey_file!)).toBe(dev.vkey);
  });

  it('every config, manifest and doc names signing keys *.skey and verifier keys *.vkey', () => {
    const files = [
      ...readdirSync(join(ROOT, 'config')).filter((f) => f.endsWith('.yaml')).map((f) => join('config', f)),
      ...(readdirSync(join(ROOT, 'deploy', 'kubernetes'), { recursive: true }) as string[])
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join('deploy', 'kubernetes', f)),
      ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f)),
      'README.md',
    ];
    const wrong: string[] = [];
    let seen = 0;
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const m of text.matchAll(/(signing_key_file|vkey_file):\s*"?([^\s"`,}]+)/g)) {
        seen++;
        const ext = m[1] === 'signing_key_file' ? '.skey' : '.vkey';
        if (!m[2]!.endsWith(ext) && !m[2]!.startsWith('$')) wrong.push(`${f}: ${m[1]}: ${m[2]} (expected *${ext})`);
      }
      for (const old of ['dev.key', 'signing.key']) if (text.includes(old) && !(f === 'README.md' && old === 'dev.key')) wrong.push(`${f}: names ${old}`);
    }
    expect(wrong).toEqual([]);
    expect(seen).toBeGreaterThan(5);
  });

  it('sealtrail dev uses sidecar.skey/.vkey, or the dev.key an older config/dev.yaml named when only that exists', () => {
    const dir = join(tmp, 'dev-keys');
    mkdirSync(dir);
    expect(devKeyFiles(dir)).toEqual({ skey: join(dir, 'sidecar.skey'), vkey: join(dir, 'sidecar.vkey'), hmac: join(dir, 'hmac.key'), legacy: false });
    writeFileSync(join(dir, 'dev.key'), 'x');
    expect(devKeyFiles(dir)).toEqual({ skey: join(dir, 'dev.key'), vkey: join(dir, 'dev.vkey'), hmac: join(dir, 'hmac.key'), legacy: true });
    writeFileSync(join(dir, 'sidecar.skey'), 'x');
    expect(devKeyFiles(dir).legacy).toBe(false);
    expect(devKeyFiles(dir).skey).toBe(join(dir, 'sidecar.skey'));
  });
});
