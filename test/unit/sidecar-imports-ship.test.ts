import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { packageOf, repoPath, tsTarget, walkImports, type ImportGraph } from '../helpers/import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * undici kept ~7 MiB resident in a sidecar that posts one batch a second;
 * the shipper now posts through node:http (src/sidecar/ship/post.ts), and
 * undici is reached only through the dynamic import a ship.tls client takes
 * (its files are followed by src/tls/client-tls.ts, an undici connector).
 */
function specifiers(file: string): { static: string[]; dynamic: string[] } {
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  }).outputText;
  const sf = ts.createSourceFile(file, js, ts.ScriptTarget.ES2022, true);
  const out = { static: [] as string[], dynamic: [] as string[] };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.static.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      out.dynamic.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const staticGraph = (entry: string): ImportGraph => walkImports(entry, (f) => specifiers(f).static, tsTarget);
const importers = (g: ImportGraph, pkg: string): string[] => [...new Set(g.bare.filter((b) => packageOf(b.spec) === pkg).map((b) => b.from))].sort();

describe('what `sealtrail sidecar` loads to ship', () => {
  it('loads undici only through the dynamic import a ship.tls client takes', () => {
    const eager = staticGraph('src/cli/sidecar.ts');
    expect(importers(eager, 'undici')).toEqual([]);
    const leading: string[] = [];
    for (const file of eager.files.keys()) {
      for (const spec of specifiers(join(ROOT, file)).dynamic) {
        if (!spec.startsWith('.')) continue;
        const target = repoPath(tsTarget(spec, join(ROOT, file)));
        if (importers(staticGraph(target), 'undici').length > 0) leading.push(`${file} -> ${spec}`);
      }
    }
    expect(leading.sort()).toEqual(['src/sidecar/ship/post.ts -> ./post-undici.js']);
  });
});
