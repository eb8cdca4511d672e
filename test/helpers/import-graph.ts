import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// Only node: builtins and typescript here: test/unit/root-export.test.ts checks what its own process loads.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ImportGraph {
  /** repo-relative file -> repo-relative files it imports */
  files: Map<string, string[]>;
  /** bare specifiers, with the file importing each */
  bare: Array<{ from: string; spec: string }>;
}

/** `file` relative to the repo root, with forward slashes. */
export function repoPath(file: string): string {
  return relative(ROOT, file).split('\\').join('/');
}

/** Every specifier in the source, type-only ones included. */
export function sourceSpecifiers(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** A relative specifier of a .ts source as the .ts file it names (`./x.js` -> `./x.ts`). */
export function tsTarget(spec: string, from: string): string {
  return resolve(dirname(from), spec.replace(/\.js$/, '.ts'));
}

/**
 * Every file reachable from `entry` (repo-relative) through the relative
 * specifiers `specifiers` finds in each file, each resolved with `toFile`.
 */
export function walkImports(entry: string, specifiers: (file: string) => string[], toFile: (spec: string, from: string) => string): ImportGraph {
  const files = new Map<string, string[]>();
  const bare: ImportGraph['bare'] = [];
  const todo = [resolve(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const key = repoPath(file);
    if (files.has(key)) continue;
    const deps: string[] = [];
    for (const spec of specifiers(file)) {
      if (spec.startsWith('.')) {
        const target = toFile(spec, file);
        deps.push(repoPath(target));
        todo.push(target);
      } else {
        bare.push({ from: key, spec });
      }
    }
    files.set(key, deps);
  }
  return { files, bare };
}

export function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The bare imports of `g` that are a forbidden package or not a node: builtin. */
export function bareOffences(g: ImportGraph, forbiddenPackages: readonly string[]): string[] {
  const out: string[] = [];
  for (const { from, spec } of g.bare) {
    if (forbiddenPackages.includes(packageOf(spec))) out.push(`${from} -> ${spec} (forbidden package)`);
    else if (!spec.startsWith('node:')) out.push(`${from} -> ${spec} (only node: builtins may be imported)`);
  }
  return out;
}
