import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/procs.js';

/**
 * What `npm pack` ships, what package.json promises and what the README
 * links to are all true of the repository: the package holds the compiled
 * code, the config samples and redaction packs it reads at run time, and the
 * user docs, and nothing of the tests, benchmarks or CI; every entry point
 * exists; every declared dependency is used; every README link resolves
 * inside the repository.
 */

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  exports: Record<string, string>;
  dependencies: Record<string, string>;
};

function packed(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('the npm package', () => {
  it('ships the compiled code, the configs and packs it reads, and the docs; no tests, benchmarks, CI or source maps', () => {
    const files = packed();
    for (const target of [...Object.values(pkg.bin), ...Object.values(pkg.exports)]) {
      expect(files).toContain(target.replace(/^\.\//, ''));
    }
    for (const p of readdirSync(join(ROOT, 'config', 'redaction'))) expect(files).toContain(`config/redaction/${p}`);
    for (const d of readdirSync(join(ROOT, 'docs'))) expect(files).toContain(`docs/${d}`);
    // the OTLP definitions the receiver decodes with, and the mapping presets, are read at run time
    expect(files).toContain('proto/opentelemetry/proto/trace/v1/trace.proto');
    expect(files).toContain('proto/LICENSE');
    for (const p of readdirSync(join(ROOT, 'config', 'mappings'))) expect(files).toContain(`config/mappings/${p}`);
    expect(files).toContain('README.md');
    const stray = files.filter((f) => /^(test|bench|\.ci|src|deploy)\//.test(f) || f.endsWith('.map') || f.startsWith('dist/test') || f.startsWith('dist/bench'));
    expect(stray).toEqual([]);
    expect(files.length).toBeLessThan(600);
  }, 60_000);

  it('points bin and exports only at files the build produced', () => {
    for (const target of [...Object.values(pkg.bin), ...Object.values(pkg.exports)]) {
      expect(existsSync(join(ROOT, target)), target).toBe(true);
    }
  });

  it('imports every dependency it declares', () => {
    const text = sourceFiles(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
    const unused = Object.keys(pkg.dependencies).filter((d) => !new RegExp(`from '${d}(/[^']*)?'`).test(text));
    expect(unused).toEqual([]);
  });
});

describe('README.md', () => {
  it('links only to files that exist inside the repository', () => {
    const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(5);
    for (const link of links) {
      const path = resolve(ROOT, link.split('#')[0]!);
      expect(path.startsWith(ROOT), `${link} leaves the repository`).toBe(true);
      expect(existsSync(path), `${link} does not exist`).toBe(true);
    }
  });
});
