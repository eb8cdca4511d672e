import { NoteError } from './errors.js';

/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the note text
 * "<origin>\n<size>\n<base64 root>\n[<extension>\n...]". Signing and
 * verifying is note.ts's job; this module only formats and parses the text.
 */

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

const ROOT_SIZE = 32;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const BASE64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// A line must survive inside a signed note: no C0 controls, well-formed UTF-16.
const LINE_FORBIDDEN = /[\u0000-\u001f]|[\ud800-\udfff]/u;

function invalid(what: string): NoteError {
  return new NoteError('checkpoint_invalid', `checkpoint: ${what}`);
}

export function originForStream(stream: string): string {
  return `sealtrail/${stream}`;
}

function checkLine(line: unknown, what: string): string {
  if (typeof line !== 'string' || line.length === 0) throw invalid(`${what} must be a non-empty string`);
  if (LINE_FORBIDDEN.test(line)) throw invalid(`${what} has a newline, control character or invalid UTF-16`);
  return line;
}

export function formatCheckpoint(c: Checkpoint): string {
  const origin = checkLine(c.origin, 'origin');
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw invalid('size must be a non-negative safe integer');
  if (!(c.root instanceof Uint8Array) || c.root.length !== ROOT_SIZE) {
    throw invalid(`root must be ${ROOT_SIZE} bytes`);
  }
  let out = `${origin}\n${c.size}\n${Buffer.from(c.root.buffer, c.root.byteOffset, c.root.length).toString('base64')}\n`;
  for (const ext of c.extensions ?? []) out += `${checkLine(ext, 'extension line')}\n`;
  return out;
}

/** Parses note text (as returned by openNote), not a whole signed note. */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string') throw invalid('text must be a string');
  if (!text.endsWith('\n')) throw invalid('text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw invalid('needs origin, size and root lines');
  for (const line of lines) {
    if (line.length === 0) throw invalid('empty line');
    if (LINE_FORBIDDEN.test(line)) throw invalid('control character or invalid UTF-16');
  }
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!DECIMAL.test(sizeText)) throw invalid('size must be decimal without leading zeros');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw invalid('size exceeds 2^53-1');
  if (!BASE64_STD.test(rootText)) throw invalid('root is not standard base64');
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== ROOT_SIZE || root.toString('base64') !== rootText) {
    throw invalid(`root must be the base64 of exactly ${ROOT_SIZE} bytes`);
  }
  return { origin, size, root, extensions: lines.slice(3) };
}
