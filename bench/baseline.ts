/**
 * `npm run bench -- --baseline <git-ref>`: the whole-path benchmark run on
 * the same corpus file by two stacks, an earlier commit's and this
 * checkout's, so a change is measured against what it changed rather than
 * against figures from another day (this 2-vCPU machine is shared, and
 * records/s moves by a third between sittings).
 *
 * The ref is exported with `git archive` into a temporary directory (no
 * worktree, so /work's git state is never touched, even by a killed run),
 * compiled there by its own `tsc -p tsconfig.json`, and its dist sidecar and
 * collector are run as separate processes, exactly as the current ones.
 * Its node_modules is a symlink to this checkout's when the two
 * package-lock.json files are byte-identical; otherwise `npm ci` installs
 * the ref's own once, kept under the system's temporary directory by the
 * lockfile's hash (native addons take minutes to compile) and linked on later
 * runs. Everything else is removed afterwards, on failure and on SIGINT too.
 *
 * Also here: the collector's store choice (`--store postgres`), which both
 * the plain benchmark and the comparison take.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createHash, randomBytes } from 'node:crypto';
import type { CorpusName } from './corpus.js';
import { median } from './proc-stats.js';

/** `null`: the collector verifies and discards (no store): what verification and HTTP cost alone. */
export type StoreKind = 'sqlite' | 'postgres' | 'null';
export const STORES: readonly StoreKind[] = ['sqlite', 'postgres', 'null'];

/** What one run of one stack on one corpus measured. */
export interface Measured {
  records: number;
  seconds: number;
  cpuSidecar: number;
  cpuCollector: number;
  rssSidecar: number;
  rssCollector: number;
}

/** One version of the program: where its built CLI is, and how to name it. */
export interface Stack {
  name: 'baseline' | 'current';
  cli: string;
}

/**
 * What a run leaves behind until it ends: processes, directories, and
 * asynchronous clean-ups (Postgres databases). SIGINT or a failure clears
 * all of it.
 */
export class Scratch {
  readonly children = new Set<ChildProcess>();
  readonly dirs = new Set<string>();
  readonly finalizers = new Set<() => Promise<void>>();

  /** Removes one directory now, as a run that finished does. */
  clearDir(dir: string): void {
    removeTree(dir);
    this.dirs.delete(dir);
  }

  /** The synchronous part, safe inside an exit path: kill, then remove. */
  clearSync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    for (const d of this.dirs) removeTree(d);
    this.dirs.clear();
  }

  /** Finalizers run last-added first, as defers do: a run's database goes before the roles that own it. */
  async clear(): Promise<void> {
    this.clearSync();
    for (const f of [...this.finalizers].reverse()) {
      this.finalizers.delete(f);
      await f().catch((err: unknown) => process.stderr.write(`clean-up failed: ${(err as Error).message}\n`));
    }
  }
}

/**
 * rm -r that never reaches into this checkout's node_modules: the symlink
 * is unlinked first (fs.rm does not follow symlinks either; this says so in
 * code rather than relying on it).
 */
function removeTree(dir: string): void {
  const nm = join(dir, 'node_modules');
  try {
    if (lstatSync(nm).isSymbolicLink()) unlinkSync(nm);
  } catch {
    // no node_modules there
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Runs a command to completion, its output kept for the error message; the child is killed with the scratch. */
export function exec(cmd: string, args: string[], opts: { cwd: string; scratch: Scratch; stdin?: ChildProcess }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    opts.scratch.children.add(child);
    if (opts.stdin?.stdout && child.stdin) opts.stdin.stdout.pipe(child.stdin);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      opts.scratch.children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) failed (${code ?? signal}):\n${out.slice(-4000)}`));
    });
  });
}

export interface BuiltBaseline extends Stack {
  ref: string;
  sha: string;
  subject: string;
  /** how its node_modules came to be, in words */
  deps: string;
}

/** Exports `ref`, gives it dependencies and compiles it; the directory is the scratch's until the end. */
export async function buildBaseline(ref: string, root: string, scratch: Scratch, log: (s: string) => void): Promise<BuiltBaseline> {
  const git = (args: string[]): Promise<string> => exec('git', args, { cwd: root, scratch });
  const sha = (await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).catch(() => {
    throw new Error(`--baseline ${ref}: not a commit of ${root}`);
  })).trim();
  const subject = (await git(['log', '-1', '--format=%s', sha])).trim();
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-baseline-'));
  scratch.dirs.add(dir);
  const t0 = Date.now();
  log(`baseline ${ref} = ${sha.slice(0, 12)} "${subject.slice(0, 80)}": exporting to ${dir}`);
  const archive = spawn('git', ['archive', '--format=tar', sha], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  scratch.children.add(archive);
  archive.once('close', () => scratch.children.delete(archive));
  await exec('tar', ['-x', '-f', '-', '-C', dir], { cwd: dir, scratch, stdin: archive });
  if (archive.exitCode !== null && archive.exitCode !== 0) throw new Error(`git archive ${sha} failed (${archive.exitCode})`);

  let deps: string;
  const lock = (d: string): Buffer | undefined => (existsSync(join(d, 'package-lock.json')) ? readFileSync(join(d, 'package-lock.json')) : undefined);
  const [ours, theirs] = [lock(root), lock(dir)];
  if (ours && theirs && ours.equals(theirs)) {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    deps = `node_modules linked to ${join(root, 'node_modules')} (package-lock.json byte-identical)`;
  } else {
    // Keyed by the lockfile and the Node version the addons were built for.
    const key = createHash('sha256').update(theirs ?? '').update(process.version).digest('hex').slice(0, 16);
    const cached = join(tmpdir(), 'sealtrail-bench-deps', key, 'node_modules');
    if (existsSync(join(cached, '.package-lock.json'))) {
      symlinkSync(cached, join(dir, 'node_modules'), 'dir');
      deps = `own node_modules from an earlier npm ci of the same package-lock.json, kept in ${cached}`;
    } else {
      log(`baseline: package-lock.json differs from ${root}'s; running npm ci in ${dir} (this downloads its own dependencies)`);
      await exec('npm', ['ci', '--ignore-scripts=false', '--no-audit', '--no-fund'], { cwd: dir, scratch });
      deps = 'own node_modules from npm ci (package-lock.json differs from the current one)';
      try {
        // Kept for the next run; another run that got there first keeps its own.
        mkdirSync(join(cached, '..'), { recursive: true });
        renameSync(join(dir, 'node_modules'), cached);
        symlinkSync(cached, join(dir, 'node_modules'), 'dir');
        log(`baseline: its node_modules kept in ${cached} for later runs`);
      } catch {
        if (!existsSync(join(dir, 'node_modules'))) symlinkSync(cached, join(dir, 'node_modules'), 'dir');
      }
    }
  }
  log(`baseline: compiling with its own tsc -p tsconfig.json`);
  await exec(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, scratch });
  const cli = join(dir, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`baseline ${ref}: no ${cli} after tsc`);
  log(`baseline: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { name: 'baseline', cli, ref, sha, subject, deps };
}

/** Describes the current checkout: HEAD and whether the working tree differs from it (without writing git's index). */
export async function describeCheckout(root: string, scratch: Scratch): Promise<string> {
  const head = (await exec('git', ['log', '-1', '--format=%h', 'HEAD'], { cwd: root, scratch })).trim();
  const dirty = (await exec('git', ['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no'], { cwd: root, scratch })).trim();
  return `${root} at HEAD ${head}${dirty ? ', with uncommitted changes to tracked files' : ''}`;
}

// ------------------------------------------------------------------ store

const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function dbUrl(db: string, user?: string): string {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  if (user !== undefined) {
    u.username = user;
    u.password = '';
  }
  return u.toString();
}

/**
 * Postgres as a production collector uses it (docs/postgres.md): an owner
 * role that migrates, an app role that only reads and inserts, and here a
 * fresh database per run, so no run finds another's rows or its warm cache
 * of them. Roles and databases are dropped at the end.
 */
export class PostgresScratch {
  private readonly suffix = randomBytes(4).toString('hex');
  readonly owner = `sealtrail_bench_owner_${this.suffix}`;
  readonly app = `sealtrail_bench_app_${this.suffix}`;
  private runs = 0;
  private rolesMade = false;

  constructor(private readonly scratch: Scratch) {}

  /** A fresh database: the YAML of `collector.store` for it, and how to drop it once the run is over. */
  async database(): Promise<{ yaml: string; drop: () => Promise<void> }> {
    if (!this.rolesMade) {
      this.scratch.finalizers.add(() => this.dropRoles());
      await admin(PG_URL, async (c) => {
        await c.query(`CREATE ROLE ${this.owner} LOGIN`);
        await c.query(`CREATE ROLE ${this.app} LOGIN`);
      });
      this.rolesMade = true;
    }
    const db = `sealtrail_bench_${this.suffix}_${this.runs++}`;
    const finalizer = (): Promise<void> => admin(PG_URL, async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)));
    this.scratch.finalizers.add(finalizer);
    await admin(PG_URL, async (c) => {
      await c.query(`CREATE DATABASE ${db} OWNER ${this.owner}`);
      await c.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
      await c.query(`GRANT CONNECT ON DATABASE ${db} TO ${this.app}`);
    });
    return {
      yaml: `{ type: postgres, url: "${dbUrl(db, this.app)}", migrate_url: "${dbUrl(db, this.owner)}" }`,
      drop: async () => {
        this.scratch.finalizers.delete(finalizer);
        await finalizer();
      },
    };
  }

  /** Any database of this run still there, then the roles (a role that owns a database cannot be dropped before it). */
  private async dropRoles(): Promise<void> {
    await admin(PG_URL, async (c) => {
      const dbs = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'sealtrail_bench_${this.suffix}_%'`);
      for (const r of dbs.rows) await c.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${this.owner}`);
      await c.query(`DROP ROLE IF EXISTS ${this.app}`);
    });
  }
}

// ------------------------------------------------------------- comparison

export interface CompareOptions {
  baseline: BuiltBaseline;
  current: Stack;
  currentDescription: string;
  corpora: readonly CorpusName[];
  rounds: number;
  events: number;
  store: StoreKind;
  /** what both stacks are configured with, in words */
  settings: string;
  /** the rerun command for one corpus */
  rerun: (corpus: CorpusName) => string;
  /** writes the corpus file once; each run gets a copy of these bytes */
  stageCorpus: (corpus: CorpusName) => { file: string; description: string };
  runStack: (stack: Stack, corpus: CorpusName, file: string) => Promise<Measured>;
  out: (s: string) => void;
}

/** Stacks alternate, and the order flips every round, so neither always runs on the warmer (or busier) machine. */
export function roundOrder<T>(round: number, first: T, second: T): [T, T] {
  return round % 2 === 0 ? [first, second] : [second, first];
}

export async function compareWithBaseline(o: CompareOptions): Promise<void> {
  for (const corpus of o.corpora) {
    const { file, description } = o.stageCorpus(corpus);
    const runs: Record<Stack['name'], Measured[]> = { baseline: [], current: [] };
    const perRound: string[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const line: string[] = [];
      for (const stack of roundOrder<Stack>(r, o.baseline, o.current)) {
        const m = await o.runStack(stack, corpus, file);
        runs[stack.name].push(m);
        line.push(`${stack.name} ${fmt(m.records / m.seconds)} rec/s, sidecar ${fmt(m.records / m.cpuSidecar)}/CPU-s, collector ${fmt(m.records / m.cpuCollector)}/CPU-s`);
      }
      perRound.push(`    round ${r + 1}: ${line.join('; then ')}`);
    }
    o.out(`${formatComparison(o, corpus, description, runs, perRound)}\n`);
  }
}

const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

function formatComparison(o: CompareOptions, corpus: CorpusName, description: string, runs: Record<Stack['name'], Measured[]>, perRound: string[]): string {
  const rows: Array<[string, (m: Measured) => number, (n: number) => string]> = [
    ['throughput, records/s', (m) => m.records / m.seconds, fmt],
    ['sidecar, records per CPU-second', (m) => m.records / m.cpuSidecar, fmt],
    [`collector, records verified and ${o.store === 'null' ? 'discarded' : 'stored'} per CPU-second`, (m) => m.records / m.cpuCollector, fmt],
    ['sidecar, peak RSS (MiB)', (m) => m.rssSidecar, (n) => n.toFixed(1)],
    ['collector, peak RSS (MiB)', (m) => m.rssCollector, (n) => n.toFixed(1)],
  ];
  const w = 54;
  const table = rows.map(([label, f, show]) => {
    const b = median(runs.baseline.map(f));
    const c = median(runs.current.map(f));
    return `  ${label.padEnd(w)}${show(b).padStart(10)}${show(c).padStart(10)}${`${(c / b).toFixed(2)}x`.padStart(12)}`;
  });
  const { baseline: bl } = o;
  return [
    `sealtrail whole path, current against baseline: ${corpus} corpus, ${o.store} store, ${o.rounds} round${o.rounds > 1 ? 's' : ''} (medians; ratio = current / baseline of the medians)`,
    `  corpus:     ${description}; the same file for both stacks`,
    `  baseline:   ${bl.ref} = ${bl.sha.slice(0, 12)} "${bl.subject.length > 72 ? `${bl.subject.slice(0, 71)}…` : bl.subject}"; built in a temp dir, ${bl.deps}`,
    `  current:    ${o.currentDescription}`,
    `  both:       ${o.settings}`,
    `  ${''.padEnd(w)}${'baseline'.padStart(10)}${'current'.padStart(10)}${'cur/base'.padStart(12)}`,
    ...table,
    `  runs (order alternates each round):`,
    ...perRound,
    `  collector CPU is its own process's only${o.store === 'postgres' ? ' (the Postgres server backends are not counted)' : ''}`,
    `  rerun: ${o.rerun(corpus)}`,
  ].join('\n');
}
