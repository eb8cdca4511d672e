import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/procs.js';

/**
 * The seams of src/ as docs/internals.md draws them, held by the import
 * graph: core/ is pure (its only import outside itself is node:crypto); what
 * an auditor runs (evidence/, report/, verify/) does not depend on the
 * collector or the sidecar; and no module of src/ imports itself back
 * through others, type-only imports included.
 */

const SRC = join(ROOT, 'src');

const files = readdirSync(SRC, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts'))
  .map((e) => join(e.parentPath, e.name));

// Static imports and re-exports, `import type` included; every module here is ESM with literal specifiers.
const SPECIFIER = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;

/** src-relative path (posix) -> its import specifiers, relative ones resolved to src-relative paths. */
const imports = new Map<string, string[]>(
  files.map((f) => {
    const text = readFileSync(f, 'utf8');
    const specs = [...text.matchAll(SPECIFIER)].map((m) => {
      const s = m[1]!;
      return s.startsWith('.') ? rel(resolve(dirname(f), s.replace(/\.js$/, '.ts'))) : s;
    });
    return [rel(f), specs];
  }),
);

function rel(path: string): string {
  return relative(SRC, path).split('\\').join('/');
}

function under(dir: string): string[] {
  return [...imports.keys()].filter((f) => f.startsWith(`${dir}/`));
}

/** Strongly connected components of more than one module (Tarjan). */
function cycles(): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of imports.get(v) ?? []) {
      if (!imports.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of imports.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('module layering', () => {
  it('finds the modules it guards', () => {
    expect(under('core').length).toBeGreaterThan(10);
    expect(imports.get('core/wire-batch.ts')).toContain('core/wire-ids.ts');
    expect(imports.get('collector/verify-batch.ts')).toContain('core/wire-batch.ts');
  });

  it('keeps core/ pure: it imports only itself and node:crypto', () => {
    const outside = under('core').flatMap((f) =>
      imports.get(f)!.filter((s) => !s.startsWith('core/') && s !== 'node:crypto').map((s) => `${f} -> ${s}`),
    );
    expect(outside).toEqual([]);
  });

  it("keeps what an auditor runs independent of the collector and the sidecar", () => {
    const wrong = ['evidence', 'report', 'verify'].flatMap((d) =>
      under(d).flatMap((f) => imports.get(f)!.filter((s) => /^(collector|sidecar)\//.test(s)).map((s) => `${f} -> ${s}`)),
    );
    expect(wrong).toEqual([]);
  });

  it('has no import cycle anywhere in src/, type-only imports included', () => {
    expect(cycles()).toEqual([]);
  });
});
