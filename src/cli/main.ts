#!/usr/bin/env node
import { SealtrailError } from '../core/errors.js';
import { defaultFileCodes, errnoOf, problemOf } from '../fs/file-errors.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, USAGE, UsageError } from './usage.js';
import { packageVersion } from './version.js';

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command's module is loaded only when it runs, so `--version` and
 * `--help` need neither the native addons (better-sqlite3, re2) nor the
 * time it takes to load the rest: they answer even where those failed to
 * build, which is when someone asks for the version.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  dev: async () => (await import('./dev.js')).devCommand,
  sidecar: async () => (await import('./sidecar.js')).sidecarCommand,
  collector: async () => (await import('./collector.js')).collectorCommand,
  migrate: async () => (await import('./migrate.js')).migrateCommand,
  validate: async () => (await import('./validate.js')).validateCommand,
  keygen: async () => (await import('./keygen.js')).keygenCommand,
  redact: async () => (await import('./redact.js')).redactCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  'token-hash': async () => (await import('./token-hash.js')).tokenHashCommand,
  report: async () => (await import('./report.js')).reportCommand,
  export: async () => (await import('./export.js')).exportCommand,
  query: async () => (await import('./query.js')).queryCommand,
  quarantine: async () => (await import('./quarantine.js')).quarantineCommand,
};

function printVersion(): number {
  const version = packageVersion();
  if (version === undefined) {
    process.stderr.write('sealtrail: error [package_incomplete]: no package.json of sealtrail above the installed module; reinstall sealtrail\n');
    return EXIT_FAIL;
  }
  process.stdout.write(`${version}\n`);
  return EXIT_OK;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    if (rest.length > 0) {
      process.stderr.write(`sealtrail: ${name} takes no arguments\n`);
      return EXIT_USAGE;
    }
    return printVersion();
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`sealtrail: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return EXIT_USAGE;
  }
  let command: Command;
  try {
    command = await load();
  } catch (err) {
    // Most likely an addon whose build was skipped (npm install --ignore-scripts): one line, not a stack.
    const why = String((err as Error)?.message ?? err).split('\n')[0];
    process.stderr.write(
      `sealtrail ${name}: error [package_incomplete]: the command cannot be loaded (${why}); ` +
        'if a native addon (better-sqlite3, re2) was not built, run `npm rebuild better-sqlite3 re2` where sealtrail is installed\n',
    );
    return EXIT_FAIL;
  }
  try {
    return await command(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`sealtrail ${name}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof SealtrailError) {
      process.stderr.write(`sealtrail ${name}: error [${err.code}]: ${err.message}\n`);
      return EXIT_FAIL;
    }
    // A second net: every path is meant to be checked where it is used, but an
    // errno error that slips through still names its path in one line.
    const errno = errnoOf(err);
    const path = errno === undefined ? undefined : (err as { path?: unknown }).path;
    if (errno !== undefined && typeof path === 'string') {
      const syscall = (err as { syscall?: unknown }).syscall;
      process.stderr.write(`sealtrail ${name}: error [${defaultFileCodes(problemOf(errno))}]: ${path}: ${typeof syscall === 'string' ? `${syscall} ` : ''}failed (${errno})\n`);
      return EXIT_FAIL;
    }
    throw err;
  }
}

// Defence in depth: whatever sealtrail creates is private even where a file
// is created without an explicit mode. The fix itself is src/fs/private-files.ts,
// which sets every mode explicitly (a library user keeps their own umask).
process.umask(0o077);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sealtrail: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = EXIT_FAIL;
  },
);
