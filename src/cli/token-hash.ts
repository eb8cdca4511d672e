import { createHash, randomBytes } from 'node:crypto';
import { MAX_TOKEN_CHARS, MIN_TOKEN_CHARS } from '../collector/auth.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    const b = c as Buffer;
    n += b.length;
    if (n > MAX_TOKEN_CHARS * 4 + 2) throw new UsageError(`token on stdin longer than ${MAX_TOKEN_CHARS} characters`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `sealtrail token-hash`: the SHA-256 a `collector.auth.tokens[].sha256`
 * entry holds. The token is read from stdin, never from argv, which shows
 * in process listings and shell history. `--generate` makes a new random
 * token and prints it (line 1, give it to the client) and its hash (line 2,
 * put it in the config).
 */
export async function tokenHashCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { generate: { type: 'boolean', default: false } });
  let token: string;
  if (values.generate) {
    token = `st_${randomBytes(32).toString('base64url')}`;
  } else {
    if (process.stdin.isTTY) process.stderr.write('token (then Enter and Ctrl-D): ');
    token = (await readStdin()).replace(/\r?\n$/, '');
    if (/\s/.test(token)) throw new UsageError('the token must not contain whitespace (a bearer token cannot)');
    if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS) {
      throw new UsageError(`the token must be ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} characters`);
    }
  }
  const hash = createHash('sha256').update(token, 'utf8').digest('hex');
  process.stdout.write(values.generate ? `${token}\n${hash}\n` : `${hash}\n`);
  return EXIT_OK;
}
