import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, runCli } from '../helpers/procs.js';

/**
 * `sealtrail --version`: the version of sealtrail's own package.json, read
 * relative to the compiled module, so it is right from an installed package
 * and in the image (/app), whatever the working directory; and it needs none
 * of the native addons, so it answers where they failed to build.
 */
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function node(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('sealtrail --version', () => {
  it('prints the package version and exits 0 (--version and -V); the usage names it', async () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    }
    const extra = await runCli(['--version', 'verify']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/--version takes no arguments/);
    expect((await runCli(['--help'])).stdout).toMatch(/sealtrail --version \| -V/);
  });

  it('reads its own package.json, not the working directory\'s, laid out as installed and without node_modules', async () => {
    // node_modules/sealtrail/{package.json,dist/src} of a project with its own package.json, as npm lays it out
    const project = join(tmp, 'agent');
    const pkg = join(project, 'node_modules', 'sealtrail');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'agent', version: '9.9.9' }));
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(ROOT, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
    const bin = join(pkg, 'dist', 'src', 'cli', 'main.js');
    expect(await node([bin, '--version'], project)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect((await node([bin, '--help'], project)).code).toBe(0);
    // a command that needs a dependency missing there: one line saying so, no stack
    const verify = await node([bin, 'verify', '--db', 'x.db'], project);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/^sealtrail verify: error \[package_incomplete\]: the command cannot be loaded \(.*\); if a native addon/);
    expect(verify.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('the checkout\'s CLI answers from another working directory', async () => {
    expect(await node([CLI, '--version'], tmp)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });
});
