import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { FakeCollector } from '../helpers/sidecar-collector.js';
import { freePort, ROOT, spawnCli, stop, waitFor, type Proc } from '../helpers/procs.js';

/**
 * The published package, as a user gets it: `npm pack` of this checkout,
 * installed into a fresh project. Install scripts are skipped, so neither
 * better-sqlite3 nor re2 is compiled there: `sealtrail/client` and
 * `sealtrail` must import, type-check and work without them. The installed
 * client then emits to a real sidecar (run from this checkout).
 */
const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let dir: string;
let project: string;
let files: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-package-'));
  // dist/ is built by the test script's pretest; packing must not rebuild it
  const { stdout } = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = packed!.files.map((f) => f.path);
  project = join(dir, 'agent');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'agent', version: '1.0.0', private: true, type: 'module' }));
  await run(NPM, ['install', join(dir, packed!.filename), '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: project,
    maxBuffer: 64 * 1024 * 1024,
  });
}, 300_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the built modules with their types, the OTLP definitions, configs and docs, and nothing of the tests', () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/client/index.d.ts', 'dist/src/cli/main.js', 'README.md', 'docs/client.md']) {
      expect(files).toContain(f);
    }
    expect(files.some((f) => f.startsWith('proto/opentelemetry/proto/trace/v1/'))).toBe(true);
    expect(files.some((f) => f.startsWith('config/mappings/'))).toBe(true);
    expect(files.filter((f) => /^(test|bench|dist\/test|dist\/bench)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
  });

  it('imports sealtrail/client and sealtrail in a project where no native addon was built', async () => {
    writeFileSync(
      join(project, 'imports.mjs'),
      `import * as client from 'sealtrail/client';
import * as lib from 'sealtrail';
const loaded = Object.keys(await import('node:module').then((m) => m.createRequire(import.meta.url).cache));
console.log(JSON.stringify({ client: Object.keys(client), lib: Object.keys(lib), native: loaded.filter((p) => /better-sqlite3|re2|[\\\\/]pg[\\\\/]|fastify/.test(p)) }));
`,
    );
    const { stdout } = await run(process.execPath, ['imports.mjs'], { cwd: project });
    const out = JSON.parse(stdout) as { client: string[]; lib: string[]; native: string[] };
    expect(out.client).toEqual(expect.arrayContaining(['AuditClient', 'ClientError', 'EventRejectedError', 'toolCall', 'modelCall']));
    expect(out.lib).toEqual(expect.arrayContaining(['verifyRecordProof', 'verifyConsistencyProof', 'verifyBundle', 'canonicalize', 'verifyInclusion']));
    expect(out.native).toEqual([]);
    // the addons really are absent there: what would load them fails
    const broken = await run(process.execPath, ['-e', "import('better-sqlite3').then((m) => new m.default(':memory:'))"], { cwd: project }).then(
      () => 'loaded',
      (err: { stderr: string }) => err.stderr,
    );
    expect(broken).not.toBe('loaded');
  });

  it('answers `sealtrail --version` from the installed bin, without its native addons built', async () => {
    const bin = join(project, 'node_modules', '.bin', 'sealtrail');
    const { stdout } = await run(bin, ['--version'], { cwd: project });
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toBe(`${version}\n`);
  });

  it('loads the OpenAI Agents and AI SDK adapters without their frameworks installed (they import types only)', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const a = await import('sealtrail/client/openai-agents'); const b = await import('sealtrail/client/ai-sdk'); console.log(JSON.stringify([Object.keys(a), Object.keys(b)]));"],
      { cwd: project },
    );
    const [agents, aiSdk] = JSON.parse(stdout) as [string[], string[]];
    expect(agents).toContain('SealtrailTracingProcessor');
    expect(aiSdk).toContain('aiSdkTelemetry');
  });

  it('type-checks a TypeScript agent against the published declarations', async () => {
    writeFileSync(
      join(project, 'agent.ts'),
      `import { AuditClient, AuditCollector, toolCall, type EmitResult } from 'sealtrail/client';
import { verifyRecordProof, type AuditRecord } from 'sealtrail';
const client = new AuditClient({ socket: '/tmp/events.sock' });
async function* steps(): AsyncGenerator<{ kind: 'text'; text: string }> {
  yield { kind: 'text', text: 'hi' };
}
// each step keeps its type through wrap(), with or without toEvent
export async function run(): Promise<string[]> {
  const out: string[] = [];
  for await (const step of new AuditCollector({ client }).wrap(steps())) out.push(step.text);
  return out;
}
const done: Promise<EmitResult> = client.emit(toolCall({ tool: { name: 'search', arguments: { q: 'x' } } }));
export const checks: [Promise<EmitResult>, typeof verifyRecordProof, AuditRecord | undefined] = [done, verifyRecordProof, undefined];
// @ts-expect-error: an event needs an event_type
void client.emit({ actor: { id: 'u1' } });
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      // a Node agent in TypeScript has @types/node; this checkout's serves
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, typeRoots: [join(ROOT, 'node_modules', '@types')], types: ['node'] },
        files: ['agent.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).then(
      () => '',
      (err: { stdout: string }) => err.stdout,
    );
    expect(result.split('\n').slice(0, 8).join('\n')).toBe('');
  });

  it('emits through a real sidecar from the installed client, each emit answered once durable', async () => {
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'package-it');
    createHmacKeyFile(join(keys, 'hmac.key'));
    const collector = await new FakeCollector().start();
    const sock = join(dir, 'events.sock');
    const config = join(dir, 'sidecar.yaml');
    const port = await freePort();
    writeFileSync(
      config,
      `sidecar:
  stream: { name: package-it }
  data_dir: ${join(dir, 'data')}
  sources: [{ id: sock, type: socket, path: ${sock} }]
  keys: { signing_key_file: ${join(keys, 's.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  seal: { max_interval: 200ms }
  ship: { url: "${collector.url}" }
  telemetry: { listen: 127.0.0.1:${port} }
`,
    );
    let sidecar: Proc | undefined = spawnCli(['sidecar', '--config', config]);
    try {
      await waitFor('the sidecar socket', () => existsSync(sock), 30_000);
      writeFileSync(
        join(project, 'emit.mjs'),
        `import { AuditClient, toolCall } from 'sealtrail/client';
const client = new AuditClient({ socket: process.argv[2] });
const results = [];
for (let i = 0; i < 3; i++) results.push(await client.emit(toolCall({ tool: { name: 'search', arguments: { i } }, actor: { id: 'agent-1', type: 'agent' } })));
await client.close();
console.log(JSON.stringify(results));
`,
      );
      const { stdout } = await run(process.execPath, ['emit.mjs', sock], { cwd: project });
      const results = JSON.parse(stdout) as Array<{ seq: number; event_id: string }>;
      expect(results.map((r) => r.seq)).toEqual([0, 1, 2]);
      const stored = () => collector.received.flatMap((r) => r.body.records.map((w) => JSON.parse(w.canonical) as { event_id?: string }));
      await waitFor('three records at the collector', () => stored().length >= 3, 30_000);
      expect(stored().map((r) => r.event_id)).toEqual(results.map((r) => r.event_id));
    } finally {
      if (sidecar) await stop(sidecar);
      sidecar = undefined;
      await collector.stop();
    }
  });
});
