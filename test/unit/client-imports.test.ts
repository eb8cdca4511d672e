import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareOffences, repoPath, sourceSpecifiers, walkImports, type ImportGraph } from '../helpers/import-graph.js';
import { ROOT } from '../helpers/procs.js';

/**
 * `sealtrail/client` loads no native addon and nothing of the sidecar or the
 * collector: an agent imports it without better-sqlite3 or re2 built for
 * its platform. Held three ways: the source import graph from
 * src/client/index.ts (type-only imports included), the built graph from
 * dist/src/client/index.js, and a Node process that imports the built
 * client with process.dlopen (how every .node addon loads) made to throw.
 */

const FORBIDDEN_PACKAGES = ['better-sqlite3', 're2', 'pg', 'pg-copy-streams', 'fastify'];
const FORBIDDEN_DIRS = ['src/sidecar/', 'src/collector/', 'src/sqlite/'];

/** Every file reachable from `entry` through static imports, re-exports and literal dynamic imports. */
function walk(entry: string, toFile: (spec: string, from: string) => string): ImportGraph {
  return walkImports(entry, sourceSpecifiers, (spec, from) => {
    const target = toFile(spec, from);
    expect(existsSync(target), `${repoPath(from)} imports ${spec}`).toBe(true);
    return target;
  });
}

function offences(g: ImportGraph): string[] {
  const out = bareOffences(g, FORBIDDEN_PACKAGES);
  for (const f of g.files.keys()) {
    const src = f.replace(/^dist\//, '');
    if (FORBIDDEN_DIRS.some((d) => src.startsWith(d))) out.push(`${f} (under ${src.split('/').slice(0, 2).join('/')})`);
    else if (!src.startsWith('src/client/') && !src.startsWith('src/core/')) out.push(`${f} (only src/client and src/core may be reached)`);
  }
  return out;
}

describe('the client import graph', () => {
  it('from src/client/index.ts reaches only node: builtins, src/client and src/core', () => {
    const g = walk('src/client/index.ts', (spec, from) => resolve(dirname(from), spec.replace(/\.js$/, '.ts')));
    expect(g.files.size).toBeGreaterThan(10);
    expect(g.files.has('src/core/record.ts')).toBe(true);
    expect(offences(g)).toEqual([]);
  });

  it('built: from dist/src/client/index.js likewise', () => {
    const entry = join(ROOT, 'dist/src/client/index.js');
    expect(existsSync(entry), 'run `npm run build` first').toBe(true);
    const g = walk('dist/src/client/index.js', (spec, from) => resolve(dirname(from), spec));
    expect(g.files.has('dist/src/core/record.js')).toBe(true);
    expect(offences(g)).toEqual([]);
  });

  it('the walk would catch a forbidden import (it is not vacuous)', () => {
    const g = walk('src/sidecar/sources/socket-source.ts', (spec, from) => resolve(dirname(from), spec.replace(/\.js$/, '.ts')));
    expect(offences(g).some((o) => o.includes('src/sidecar/'))).toBe(true);
    const db = walk('src/sqlite/open.ts', (spec, from) => resolve(dirname(from), spec.replace(/\.js$/, '.ts')));
    expect(offences(db).some((o) => o.includes('better-sqlite3'))).toBe(true);
  });

  it('imports and runs in a Node process where loading any native addon throws', () => {
    const script = `
      process.dlopen = (m, f) => { throw new Error('native addon loaded: ' + f); };
      const c = await import(${JSON.stringify(join(ROOT, 'dist/src/client/index.js'))});
      const client = new c.AuditClient({ file: process.argv[1] });
      const r = await client.emit(c.toolCall({ tool: { name: 'probe' } }));
      await client.close();
      process.stdout.write(JSON.stringify({ exports: Object.keys(c).sort(), id: r.event_id }));
    `;
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-client-probe-'));
    let out: string;
    try {
      out = execFileSync(process.execPath, ['--input-type=module', '-e', script, join(dir, 'probe.jsonl')], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const got = JSON.parse(out) as { exports: string[]; id: string };
    expect(got.exports).toEqual(expect.arrayContaining(['AuditClient', 'ClientError', 'EventRejectedError', 'toolCall', 'modelCall', 'decision', 'approval']));
    expect(got.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
