#!/usr/bin/env node
import { SealtrailError } from '../core/errors.js';
import { defaultFileCodes, errnoOf, problemOf } from '../fs/file-errors.js';
import { collectorCommand } from './collector.js';
import { devCommand } from './dev.js';
import { exportCommand } from './export.js';
import { keygenCommand } from './keygen.js';
import { migrateCommand } from './migrate.js';
import { quarantineCommand } from './quarantine.js';
import { queryCommand } from './query.js';
import { redactCommand } from './redact.js';
import { reportCommand } from './report.js';
import { sidecarCommand } from './sidecar.js';
import { tokenHashCommand } from './token-hash.js';
import { EXIT_FAIL, EXIT_USAGE, USAGE, UsageError } from './usage.js';
import { validateCommand } from './validate.js';
import { verifyCommand } from './verify.js';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  dev: devCommand,
  sidecar: sidecarCommand,
  collector: collectorCommand,
  migrate: migrateCommand,
  validate: validateCommand,
  keygen: keygenCommand,
  redact: redactCommand,
  verify: verifyCommand,
  'token-hash': tokenHashCommand,
  report: reportCommand,
  export: exportCommand,
  query: queryCommand,
  quarantine: quarantineCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sealtrail: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return EXIT_USAGE;
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
