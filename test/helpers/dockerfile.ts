/**
 * A line parser for the image's Dockerfile and .dockerignore, and the
 * contract deploy/Dockerfile must keep (test/unit/dockerfile.test.ts). There
 * is no container engine here to build the image, so the contract is
 * checked on the text: what a build would cache, as whom it runs, on which
 * Node. Enough of the Dockerfile syntax for this file: comments, line
 * continuations, exec (JSON) and shell forms, flags like --from=.
 */

export interface Instruction {
  /** 1-based line where the instruction starts */
  line: number;
  op: string;
  /** the arguments as written, continuations joined */
  args: string;
}

export interface Stage {
  image: string;
  alias: string | undefined;
  /** the instructions after FROM, up to the next FROM */
  body: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const start = i + 1;
    let joined = raw;
    while (joined.endsWith('\\') && i + 1 < lines.length) {
      joined = joined.slice(0, -1);
      i++;
      let next = lines[i]!.trim();
      // Comment lines inside a continuation are dropped, as the builder does.
      while (next.startsWith('#') && i + 1 < lines.length) next = lines[++i]!.trim();
      if (!next.startsWith('#')) joined += ` ${next}`;
    }
    const m = /^(\S+)\s*(.*)$/.exec(joined)!;
    instructions.push({ line: start, op: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ').trim() });
  }
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const words = ins.args.split(' ').filter((w) => !w.startsWith('--'));
      const as = words.findIndex((w) => w.toUpperCase() === 'AS');
      stages.push({ image: words[0]!, alias: as >= 0 ? words[as + 1] : undefined, body: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`line ${ins.line}: ${ins.op} before the first FROM`);
    } else {
      stages[stages.length - 1]!.body.push(ins);
    }
  }
  return stages;
}

/** COPY's flags (--from=build) and its sources (every word but the last). */
export function copyParts(ins: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  const words = ins.args.startsWith('[') ? (JSON.parse(ins.args) as string[]) : ins.args.split(' ');
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: rest.slice(0, -1).map((s) => s.replace(/^\.\//, '').replace(/\/$/, '')), dest: rest[rest.length - 1]! };
}

const NODE_LTS = /^node:(22|24)(\.\d+){0,2}(-[a-z0-9.]+)*(@sha256:[0-9a-f]{64})?$/;
const MANIFESTS = new Set(['package.json', 'package-lock.json', '.npmrc']);
const NATIVE_ADDONS = ['better-sqlite3', 're2'];
/** What the running image needs beside node_modules and dist (package.json `files` less the docs). */
const RUNTIME_FILES = ['package.json', 'config', 'proto'];

/**
 * Every way `text` breaks the image contract, as sentences; none when kept.
 * The build stage installs from package.json + package-lock.json alone (the
 * native addons compiled in that layer) before any source is copied, then
 * builds and drops the dev dependencies; the last stage runs on Node 22 or
 * 24 LTS as a numeric non-root user, with the CLI as its entrypoint.
 */
export function dockerfileProblems(text: string, binPath: string): string[] {
  const problems: string[] = [];
  let stages: Stage[];
  try {
    stages = parseDockerfile(text);
  } catch (err) {
    return [(err as Error).message];
  }
  if (stages.length < 2) problems.push('not multi-stage: the compilers would ship in the image');
  const aliases = new Set(stages.map((s) => s.alias).filter((a) => a !== undefined));
  for (const s of stages) {
    if (!NODE_LTS.test(s.image) && !aliases.has(s.image)) problems.push(`FROM ${s.image}: not a Node 22 or 24 LTS image`);
  }

  const build = stages.find((s) => s.body.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)));
  if (!build) problems.push('no stage runs `npm run build`');
  else problems.push(...buildStageProblems(build));

  const final = stages[stages.length - 1];
  if (final && final !== build) problems.push(...finalStageProblems(final, build?.alias, binPath));
  return problems;
}

function buildStageProblems(build: Stage): string[] {
  const problems: string[] = [];
  const body = build.body;
  const at = (pred: (i: Instruction) => boolean): number => body.findIndex(pred);
  const copies = body.map((ins, index) => ({ ins, index })).filter(({ ins }) => ins.op === 'COPY' || ins.op === 'ADD');
  const manifestCopy = copies.find(({ ins }) => {
    const src = copyParts(ins).sources;
    return src.includes('package.json') && src.includes('package-lock.json');
  });
  const ci = at((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
  const firstSource = copies.find(({ ins }) => copyParts(ins).sources.some((s) => !MANIFESTS.has(s)));
  const buildRun = at((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args));
  if (!manifestCopy) problems.push('build stage: package.json and package-lock.json are not copied together');
  if (ci < 0) problems.push('build stage: dependencies are not installed with `npm ci` (the lockfile)');
  if (manifestCopy && ci >= 0 && manifestCopy.index > ci) problems.push('build stage: `npm ci` runs before the manifests are copied');
  if (firstSource && ci >= 0 && firstSource.index < ci) {
    problems.push(`build stage: line ${firstSource.ins.line} copies ${copyParts(firstSource.ins).sources.join(' ')} before \`npm ci\`: a source change would reinstall and recompile the native addons`);
  }
  if (ci >= 0) {
    const ciArgs = body[ci]!.args;
    const rebuild = at((i) => i.op === 'RUN' && /\bnpm rebuild\b/.test(i.args) && NATIVE_ADDONS.every((a) => i.args.includes(a)));
    if (/--ignore-scripts/.test(ciArgs) && (rebuild < 0 || (firstSource !== undefined && rebuild > firstSource.index))) {
      problems.push(`build stage: \`npm ci --ignore-scripts\` without \`npm rebuild ${NATIVE_ADDONS.join(' ')}\` before the sources: the addons would not be compiled in the cached layer`);
    }
    if (/--omit=dev|--production/.test(ciArgs)) problems.push('build stage: `npm ci` omits the dev dependencies the build needs (typescript)');
  }
  if (buildRun >= 0 && firstSource && buildRun < firstSource.index) problems.push('build stage: `npm run build` runs before the sources are copied');
  const prune = at((i) => i.op === 'RUN' && /\bnpm prune\b[^&]*--omit=dev|\bnpm prune\b[^&]*--production/.test(i.args));
  if (prune < 0 || prune < buildRun) problems.push('build stage: dev dependencies are not pruned after the build (`npm prune --omit=dev`)');
  return problems;
}

function finalStageProblems(final: Stage, buildAlias: string | undefined, binPath: string): string[] {
  const problems: string[] = [];
  const body = final.body;
  const users = body.filter((i) => i.op === 'USER');
  const user = users[users.length - 1];
  const m = user ? /^(\d+)(?::(\d+))?$/.exec(user.args) : null;
  if (!user) problems.push('final stage: no USER: the image runs as root');
  else if (!m) problems.push(`final stage: USER ${user.args} is not numeric: Kubernetes cannot check runAsNonRoot against a name`);
  else if (Number(m[1]) === 0) problems.push('final stage: USER 0 is root');
  const entry = body.filter((i) => i.op === 'ENTRYPOINT').pop();
  if (!entry) problems.push('final stage: no ENTRYPOINT');
  else {
    let argv: unknown;
    try {
      argv = JSON.parse(entry.args);
    } catch {
      argv = undefined;
    }
    if (!Array.isArray(argv) || argv[0] !== 'node' || typeof argv[1] !== 'string' || !argv[1].endsWith(binPath)) {
      problems.push(`final stage: ENTRYPOINT ${entry.args} is not ["node", ".../${binPath}"] in exec form (signals must reach node)`);
    }
  }
  if (user && entry && body.indexOf(user) > body.indexOf(entry)) problems.push('final stage: USER comes after ENTRYPOINT');
  const runs = body.filter((i) => i.op === 'RUN');
  if (runs.some((r) => /\b(g\+\+|gcc|make|python3|build-essential)\b/.test(r.args))) problems.push('final stage: installs a compiler toolchain');
  const copied = body.filter((i) => i.op === 'COPY').map(copyParts);
  for (const dir of ['node_modules', 'dist']) {
    if (!copied.some((c) => c.from === buildAlias && c.sources.some((s) => s.endsWith(`/${dir}`) || s === dir))) {
      problems.push(`final stage: ${dir} is not copied from the build stage`);
    }
  }
  for (const f of RUNTIME_FILES) {
    if (!copied.some((c) => c.sources.includes(f))) problems.push(`final stage: ${f} is not copied (the package needs it at run time)`);
  }
  return problems;
}

// ---- .dockerignore ------------------------------------------------------------

/** One .dockerignore pattern as a regular expression over context paths ("a/b/c"). */
function patternRegExp(pattern: string): RegExp {
  let p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  p = p.replace(/^\.\//, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      // "**/" matches any number of directories, zero included
      if (p[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i++;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether a context path is left out of the build context: the last
 * matching pattern wins ("!" re-includes), and a path is out when it or one
 * of its parent directories is matched.
 */
export function dockerIgnored(ignoreText: string, path: string): boolean {
  const rules = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (l.startsWith('!') ? { keep: true, re: patternRegExp(l.slice(1)) } : { keep: false, re: patternRegExp(l) }));
  const parts = path.split('/');
  let ignored = false;
  for (const rule of rules) {
    for (let n = 1; n <= parts.length; n++) {
      if (rule.re.test(parts.slice(0, n).join('/'))) {
        ignored = !rule.keep;
        break;
      }
    }
  }
  return ignored;
}

/** What .dockerignore must keep out of the context, and what the Dockerfile's own COPYs need in it. */
export function dockerignoreProblems(ignoreText: string, dockerfileText: string): string[] {
  const problems: string[] = [];
  for (const p of ['node_modules', 'node_modules/re2/build/Release/re2.node', 'src/node_modules', 'dist', 'dist/src/cli/main.js', '.git', '.git/config', '.sealtrail', '.sealtrail/keys/sidecar.skey', 'keys/agents.skey']) {
    if (!dockerIgnored(ignoreText, p)) problems.push(`.dockerignore lets ${p} into the build context`);
  }
  for (const stage of parseDockerfile(dockerfileText)) {
    for (const ins of stage.body) {
      if (ins.op !== 'COPY' && ins.op !== 'ADD') continue;
      const { from, sources } = copyParts(ins);
      if (from !== undefined) continue;
      for (const s of sources) if (dockerIgnored(ignoreText, s)) problems.push(`.dockerignore leaves out ${s}, which line ${ins.line} copies`);
    }
  }
  return problems;
}
