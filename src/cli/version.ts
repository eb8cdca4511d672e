import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The version in sealtrail's own package.json, found by walking up from this
 * module (src/cli under vitest, dist/src/cli once built, the same below
 * node_modules/sealtrail or /app in the image), never from the working
 * directory, whose package.json is someone else's.
 */
export function packageVersion(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const version = sealtrailVersionIn(join(dir, 'package.json'));
    if (version !== undefined) return version;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function sealtrailVersionIn(file: string): string | undefined {
  let pkg: unknown;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const { name, version } = (pkg ?? {}) as { name?: unknown; version?: unknown };
  return name === 'sealtrail' && typeof version === 'string' ? version : undefined;
}
