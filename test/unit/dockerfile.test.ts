import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dockerfileProblems, dockerIgnored, dockerignoreProblems, parseDockerfile } from '../helpers/dockerfile.js';
import { ROOT } from '../helpers/procs.js';

/**
 * deploy/Dockerfile cannot be built here (no container engine), so its
 * contract is checked on the text: dependencies installed from the manifests
 * before any source is copied (a source change keeps the compiled addons),
 * dev dependencies pruned, Node 22 or 24 LTS, a numeric non-root user, the
 * CLI as entrypoint; and the root .dockerignore (the documented context is
 * the repository root) keeps node_modules, dist, .git and local state out.
 * Each rule is also shown to fire on a Dockerfile that breaks it.
 */
const DOCKERFILE = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
const IGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; version: string };
const BIN = PKG.bin.sealtrail!;

/** The Dockerfile with `from` replaced by `to` (which must occur). */
function mutate(from: string | RegExp, to: string): string {
  const out = DOCKERFILE.replace(from, to);
  expect(out, `mutation of ${String(from)}`).not.toBe(DOCKERFILE);
  return out;
}

describe('deploy/Dockerfile', () => {
  it('keeps the contract', () => {
    expect(dockerfileProblems(DOCKERFILE, BIN)).toEqual([]);
    // the entrypoint is the package's own bin, built from a source that exists
    expect(existsSync(join(ROOT, BIN.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
  });

  it('parses stages, continuations and flags as the builder does', () => {
    const stages = parseDockerfile(DOCKERFILE);
    expect(stages.map((s) => s.image)).toEqual(['node:22-bookworm-slim', 'node:22-bookworm-slim']);
    expect(stages[0]!.alias).toBe('build');
    const run = stages[0]!.body.find((i) => i.op === 'RUN' && i.args.includes('npm ci'))!;
    expect(run.args).toContain('npm rebuild better-sqlite3 re2');
    expect(parseDockerfile('# c\nFROM a AS b\nRUN x \\\n  # dropped\n  y\n')[0]!.body).toEqual([{ line: 3, op: 'RUN', args: 'x y' }]);
  });

  it('is documented with the build context its .dockerignore belongs to', () => {
    const cmd = 'docker build -f deploy/Dockerfile -t sealtrail:0.1.0 .';
    expect(DOCKERFILE).toContain(cmd);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain(cmd);
    expect(IGNORE).toContain(cmd);
  });

  describe('each rule fires when broken', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['sources copied before npm ci', mutate('COPY package.json package-lock.json ./\n', 'COPY package.json package-lock.json ./\nCOPY src ./src\n'), /copies src before `npm ci`/],
      ['the whole context copied first', mutate('COPY package.json package-lock.json ./', 'COPY . .'), /package.json and package-lock.json are not copied together|copies \. before/],
      ['no lockfile', mutate('COPY package.json package-lock.json ./', 'COPY package.json ./'), /not copied together/],
      ['npm install instead of npm ci', mutate('npm ci --ignore-scripts', 'npm install'), /`npm ci`/],
      ['addons never compiled', mutate(' \\\n && npm rebuild better-sqlite3 re2', ''), /npm rebuild better-sqlite3 re2/],
      ['no prune', mutate(/ \\\n && npm prune[^\n]*/, ''), /not pruned/],
      ['a named user', mutate('USER 10001:10001', 'USER node'), /not numeric/],
      ['root', mutate('USER 10001:10001', 'USER 0'), /USER 0 is root/],
      ['no user', mutate('USER 10001:10001\n', ''), /runs as root/],
      ['Node 20', mutate(/FROM node:22-bookworm-slim\nENV/, 'FROM node:20-bookworm-slim\nENV'), /node:20-bookworm-slim: not a Node 22 or 24/],
      ['latest', mutate('FROM node:22-bookworm-slim AS build', 'FROM node:latest AS build'), /node:latest/],
      ['shell-form entrypoint', mutate(/ENTRYPOINT \[.*\]/, 'ENTRYPOINT node /app/dist/src/cli/main.js'), /exec form/],
      ['no proto', mutate('COPY proto ./proto\n', ''), /proto is not copied/],
      ['single stage', DOCKERFILE.slice(0, DOCKERFILE.indexOf('FROM node:22-bookworm-slim\n')), /not multi-stage/],
    ];
    for (const [name, text, want] of cases) {
      it(name, () => {
        const problems = dockerfileProblems(text, BIN);
        expect(problems.join('\n')).toMatch(want);
      });
    }
    it('Node 24 is accepted as well', () => {
      expect(dockerfileProblems(DOCKERFILE.replaceAll('node:22-bookworm-slim', 'node:24-bookworm-slim'), BIN)).toEqual([]);
    });
  });
});

describe('.dockerignore', () => {
  it('keeps dependencies, build output, git and local state and keys out, and lets in all the Dockerfile copies', () => {
    expect(dockerignoreProblems(IGNORE, DOCKERFILE)).toEqual([]);
    for (const p of ['src/cli/main.ts', 'config/redaction/pii-basic.yaml', 'proto/opentelemetry/proto/trace/v1/trace.proto', 'package-lock.json']) {
      expect(dockerIgnored(IGNORE, p), p).toBe(false);
    }
  });

  it('the checks fire when it is missing an entry, or re-includes one', () => {
    const without = (line: string): string => IGNORE.split('\n').filter((l) => l.trim() !== line).join('\n');
    expect(dockerignoreProblems(without('node_modules').replace('**/node_modules', ''), DOCKERFILE).join('\n')).toMatch(/lets node_modules into/);
    expect(dockerignoreProblems(without('.git'), DOCKERFILE).join('\n')).toMatch(/lets \.git into/);
    expect(dockerignoreProblems(without('dist'), DOCKERFILE).join('\n')).toMatch(/lets dist into/);
    expect(dockerignoreProblems(`${IGNORE}\n!dist\n`, DOCKERFILE).join('\n')).toMatch(/lets dist into/);
    expect(dockerignoreProblems(`${IGNORE}\nproto\n`, DOCKERFILE).join('\n')).toMatch(/leaves out proto, which line \d+ copies/);
    expect(dockerignoreProblems('', DOCKERFILE).length).toBeGreaterThan(3);
  });

  it('matches patterns as the builder does: anchored at the root, ** across directories, parents cover children', () => {
    expect(dockerIgnored('dist', 'dist/src/a.js')).toBe(true);
    expect(dockerIgnored('dist', 'src/dist')).toBe(false);
    expect(dockerIgnored('**/dist', 'src/dist')).toBe(true);
    expect(dockerIgnored('**/*.key', 'a/b/hmac.key')).toBe(true);
    expect(dockerIgnored('**/*.key', 'hmac.key')).toBe(true);
    expect(dockerIgnored('*.log\n!keep.log', 'keep.log')).toBe(false);
  });
});
