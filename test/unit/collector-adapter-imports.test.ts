import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/procs.js';

/**
 * What the built adapters load at run time: sealtrail/client/openai-agents
 * and sealtrail/client/ai-sdk import their frameworks' types only, so they
 * need nothing but Node's builtins; sealtrail/client/langchain loads
 * @langchain/core and nothing else; none of them reaches the sidecar or the
 * collector; and sealtrail/client itself reaches no adapter.
 */

/** Bare specifiers and repo-relative files reachable from a built entry point. */
function graph(entry: string): { files: string[]; bare: string[] } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const todo = [resolve(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    const key = relative(ROOT, file);
    if (files.has(key)) continue;
    files.add(key);
    for (const { fileName: spec } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
      else bare.add(spec);
    }
  }
  return { files: [...files], bare: [...bare] };
}

describe('the adapters’ run-time imports', () => {
  it('are built', () => {
    for (const a of ['openai-agents', 'langchain', 'ai-sdk']) expect(existsSync(resolve(ROOT, `dist/src/client/adapters/${a}.js`)), 'run `npm run build` first').toBe(true);
  });

  it('openai-agents and ai-sdk load only node: builtins and src/client, src/core', () => {
    for (const a of ['openai-agents', 'ai-sdk']) {
      const g = graph(`dist/src/client/adapters/${a}.js`);
      expect(g.bare.filter((s) => !s.startsWith('node:')), a).toEqual([]);
      expect(g.files.filter((f) => !f.startsWith('dist/src/client/') && !f.startsWith('dist/src/core/')), a).toEqual([]);
    }
  });

  it('langchain loads @langchain/core and nothing else outside src/client, src/core', () => {
    const g = graph('dist/src/client/adapters/langchain.js');
    expect(g.bare.filter((s) => !s.startsWith('node:') && !s.startsWith('@langchain/core/'))).toEqual([]);
    expect(g.bare).toContain('@langchain/core/callbacks/base');
    expect(g.files.filter((f) => !f.startsWith('dist/src/client/') && !f.startsWith('dist/src/core/'))).toEqual([]);
  });

  it('sealtrail/client reaches no adapter', () => {
    expect(graph('dist/src/client/index.js').files.filter((f) => f.includes('/adapters/'))).toEqual([]);
  });
});
