import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { packageOf, repoPath, tsTarget, walkImports, type ImportGraph } from '../helpers/import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * What `sealtrail sidecar` keeps in memory is part of its footprint beside an
 * agent (issue 14), so what it loads is held here on its import graph, each
 * module as tsc emits it (type-only imports gone):
 * - ajv is reachable from no sidecar module at all: config and rule files
 *   are checked by src/config/schema-check.ts, which generates no code;
 * - protobufjs is reachable only through the dynamic imports that run when
 *   the config asks for OTLP: an otlp source (sources/from-config.ts) or a
 *   format that can meet OTLP lines (formats/source-format.ts: otlp-json,
 *   auto). A sidecar reading `format: sealtrail` files never loads it.
 */

interface Specifiers {
  static: string[];
  dynamic: string[];
}

function specifiers(file: string): Specifiers {
  const js = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  }).outputText;
  const sf = ts.createSourceFile(file, js, ts.ScriptTarget.ES2022, true);
  const out: Specifiers = { static: [], dynamic: [] };
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
const fullGraph = (entry: string): ImportGraph => walkImports(entry, (f) => { const s = specifiers(f); return [...s.static, ...s.dynamic]; }, tsTarget);
const importers = (g: ImportGraph, pkg: string): string[] => [...new Set(g.bare.filter((b) => packageOf(b.spec) === pkg).map((b) => b.from))].sort();

describe('what `sealtrail sidecar` loads', () => {
  const ENTRY = 'src/cli/sidecar.ts';

  it('never loads ajv, not even on a path the config opens', () => {
    expect(importers(fullGraph(ENTRY), 'ajv')).toEqual([]);
    expect(importers(fullGraph('src/config/load.ts'), 'ajv')).toEqual([]);
  });

  /** Every dynamic import in the eager graph that leads to `pkg`, by the module that makes it. */
  function leadingTo(pkg: string): string[] {
    const eager = staticGraph(ENTRY);
    expect(importers(eager, pkg)).toEqual([]);
    const leading: string[] = [];
    for (const file of eager.files.keys()) {
      for (const spec of specifiers(join(ROOT, file)).dynamic) {
        if (!spec.startsWith('.')) continue;
        const target = repoPath(tsTarget(spec, join(ROOT, file)));
        if (importers(staticGraph(target), pkg).length > 0) leading.push(`${file} -> ${spec}`);
      }
    }
    return leading.sort();
  }

  it('loads protobufjs only through the dynamic imports an OTLP source or format takes', () => {
    expect(importers(fullGraph(ENTRY), 'protobufjs').length).toBeGreaterThan(0);
    expect(leadingTo('protobufjs')).toEqual(['src/sidecar/formats/source-format.ts -> ./for-source.js', 'src/sidecar/sources/from-config.ts -> ./otlp-source.js']);
  });

  // undici kept ~7 MiB resident in a sidecar that posts one batch a second;
  // the shipper posts through node:http (src/sidecar/ship/post.ts) unless
  // ship.tls asks for a client whose files are followed (src/tls/client-tls.ts,
  // an undici connector).
  it('loads undici only through the dynamic import a ship.tls client takes', () => {
    expect(leadingTo('undici')).toEqual(['src/sidecar/ship/post.ts -> ./post-undici.js']);
  });
});
