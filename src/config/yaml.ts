/**
 * Shared plumbing for every YAML file sealtrail reads (the config file and
 * redaction rule files): bounded reads, strict parsing, and mapping a place in
 * the parsed data back to file:line:col. Nothing here ever copies file content
 * into an error message: config files hold tokens and rule files hold
 * patterns written to match PII.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  Alias,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node as YamlNode,
} from 'yaml';
import { ConfigError } from '../core/errors.js';

/** A path into the decoded data: object keys and array indexes. */
export type DataPath = readonly (string | number)[];

export interface Place {
  file?: string;
  line?: number;
  col?: number;
}

/**
 * Far deeper than any sealtrail file needs; stops deep documents before
 * toJS and ajv, which both recurse on the JS stack.
 */
const MAX_NODE_DEPTH = 64;

/**
 * Aliases are legitimate for sharing blocks, but each one can expand to a
 * whole subtree. No real sealtrail file comes near these limits; a
 * billion-laughs file hits them long before it costs memory.
 */
export const MAX_EXPANDED_NODES = 100_000;
/** yaml's own alias check, kept as a second line behind MAX_EXPANDED_NODES. */
export const MAX_ALIAS_COUNT = 1000;

export interface YamlSource {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/**
 * Read at most `maxBytes` bytes. Reads in a loop instead of trusting stat so a
 * FIFO, /dev/zero or a file growing under us cannot make us allocate more.
 */
export function readBoundedFile(path: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new ConfigError('config_io', `cannot open ${what}: ${ioReason(err)}`, { file: path }, { cause: err });
  }
  try {
    let st;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw new ConfigError('config_io', `cannot stat ${what}: ${ioReason(err)}`, { file: path }, { cause: err });
    }
    if (st.isDirectory()) throw new ConfigError('config_io', `${what} is a directory`, { file: path });
    if (st.isFile() && st.size > maxBytes) throw tooLarge(path, what, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        throw new ConfigError('config_io', `cannot read ${what}: ${ioReason(err)}`, { file: path }, { cause: err });
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw tooLarge(path, what, maxBytes);
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, what: string, maxBytes: number): ConfigError {
  return new ConfigError('config_io', `${what} is larger than ${maxBytes} bytes`, { file: path });
}

function ioReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'I/O error';
}

/**
 * Strict UTF-8 decode plus the YAML 1.2 printable-character rule, which the
 * yaml package does not enforce: binary garbage should read as "not a YAML
 * file" at a precise place, not as a string full of control bytes.
 */
export function decodeYamlBytes(bytes: Uint8Array, file: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const prefix = new TextDecoder('utf-8').decode(bytes.subarray(0, bad));
    const lc = new LineCounter();
    countLines(lc, prefix);
    const pos = lc.linePos(prefix.length);
    throw new ConfigError('config_yaml', 'file is not valid UTF-8', { file, line: pos.line, col: pos.col });
  }
  checkPrintable(text, file);
  return text;
}

function countLines(lc: LineCounter, text: string): void {
  lc.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
}

function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

// YAML 1.2 §5.1: tab, LF, CR, printable ASCII, NEL, and the BMP/astral ranges minus surrogates and U+FFFE/U+FFFF.
// A BOM at offset 0 is allowed (TextDecoder strips it already).
const NON_PRINTABLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F\uFFFE\uFFFF]/;

function checkPrintable(text: string, file: string): void {
  const m = NON_PRINTABLE.exec(text);
  if (!m) return;
  const lc = new LineCounter();
  countLines(lc, text);
  const pos = lc.linePos(m.index);
  throw new ConfigError('config_yaml', 'file contains a non-printable control character (not a text YAML file?)', {
    file,
    line: pos.line,
    col: pos.col,
  });
}

/** Bounded read, strict decode and parse: how every sealtrail YAML file is opened. */
export function readYamlFile(path: string, maxBytes: number, what: string): YamlSource {
  return parseYamlText(decodeYamlBytes(readBoundedFile(path, maxBytes, what), path), path);
}

/** The same for text already in memory: the same size limit and the same character checks as a file. */
export function parseYamlString(text: string, file: string, maxBytes: number, what: string): YamlSource {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw tooLarge(file, what, maxBytes);
  return parseYamlText(decodeYamlBytes(Buffer.from(text.replace(/^\uFEFF/, ''), 'utf8'), file), file);
}

/**
 * Parse one YAML document strictly: syntax errors, duplicate keys, multiple
 * documents and every warning (unknown tags, ...) are errors, and the root
 * must be a mapping.
 */
export function parseYamlText(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  let doc: Document.Parsed;
  try {
    // uniqueKeys off: yaml's check compares each key with every earlier one
    // (quadratic: seconds for a few ten thousand keys); checkStructure does it with a Set.
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true });
  } catch (err) {
    // The yaml composer recurses per nesting level; a deeply nested file
    // overflows the stack before it yields an error of its own.
    const why = err instanceof RangeError ? 'YAML nesting is too deep' : 'YAML parser failed';
    throw new ConfigError('config_yaml', why, { file }, { cause: err });
  }
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const pos = lines.linePos(problem.pos[0]);
    throw new ConfigError('config_yaml', `YAML ${problem.code}: ${cleanYamlMessage(problem.message)}`, {
      file,
      line: pos.line,
      col: pos.col,
    });
  }
  const src: YamlSource = { file, doc, lines };
  if (!isMap(doc.contents)) {
    const at = doc.contents ? placeOfNode(src, doc.contents) : { file, line: 1, col: 1 };
    throw new ConfigError('config_schema', 'the document root must be a mapping', at);
  }
  checkStructure(src);
  return src;
}

/**
 * The yaml package quotes source tokens in some messages ("Unexpected scalar
 * token in YAML stream: \"...\""); a config file can hold a token, so cut any
 * quoted text and the trailing position suffix.
 */
function cleanYamlMessage(message: string): string {
  const first = message.split('\n', 1)[0] ?? '';
  return first
    .replace(/\s*at line \d+, column \d+.*$/, '')
    .replace(/:\s*"[^]*$/, '')
    .replace(/"[^"]*"/g, '"…"')
    .slice(0, 200);
}

/**
 * One bounded pass over the node tree: keys must be plain strings (non-string
 * keys get stringified by toJS, which also prints them to stderr), every alias
 * must resolve to an anchor outside itself, nesting stays shallow, and the
 * data after alias expansion stays small. The expansion check is ours, not
 * only yaml's maxAliasCount, so an alias bomb is reported at the node that
 * explodes instead of somewhere in the file.
 */
function checkStructure(src: YamlSource): void {
  // Pre-order with children pushed left to right pops them right to left;
  // reversed, that list is a left-to-right post-order, in which an anchor
  // (always earlier in the document and, unless cyclic, not an ancestor) is
  // finished before any alias to it.
  const order: YamlNode[] = [];
  const stack: { node: unknown; depth: number }[] = [{ node: src.doc.contents, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || node === undefined) continue;
    if (depth > MAX_NODE_DEPTH) {
      throw new ConfigError('config_schema', 'nesting is too deep', placeOfNode(src, node as YamlNode));
    }
    order.push(node as YamlNode);
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key;
        if (!isScalar(key) || typeof key.value !== 'string') {
          const at = isScalar(key) || isMap(key) || isSeq(key) || isAlias(key) ? placeOfNode(src, key) : placeOfNode(src, node);
          throw new ConfigError('config_schema', 'mapping keys must be strings', at);
        }
        if (seen.has(key.value)) throw new ConfigError('config_yaml', 'YAML DUPLICATE_KEY: Map keys must be unique', placeOfNode(src, key));
        seen.add(key.value);
        stack.push({ node: pair.value, depth: depth + 1 });
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push({ node: item, depth: depth + 1 });
    }
  }

  const expanded = new Map<unknown, number>();
  const sizeOf = (n: unknown): number => (n === null || n === undefined ? 0 : (expanded.get(n) ?? 0));
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    let size: number;
    if (isAlias(node)) {
      const target = node.resolve(src.doc);
      if (!target) throw new ConfigError('config_yaml', 'alias refers to an unknown anchor', placeOfNode(src, node));
      const t = expanded.get(target);
      if (t === undefined) throw new ConfigError('config_yaml', 'alias refers to a node that contains it', placeOfNode(src, node));
      size = t;
    } else if (isMap(node)) {
      size = 1;
      for (const pair of node.items) size += 1 + sizeOf(pair.value);
    } else if (isSeq(node)) {
      size = 1;
      for (const item of node.items) size += sizeOf(item);
    } else {
      size = 1;
    }
    if (size > MAX_EXPANDED_NODES) {
      throw new ConfigError(
        'config_yaml',
        `aliases expand this node to more than ${MAX_EXPANDED_NODES} values (alias bomb?)`,
        placeOfNode(src, node),
      );
    }
    expanded.set(node, size);
  }
}

/** Convert to plain data; alias expansion is capped against alias bombs. */
export function toPlainData(src: YamlSource): unknown {
  try {
    return src.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('config_yaml', 'too many alias expansions (possible alias bomb)', { file: src.file }, { cause: err });
  }
}

export function placeOfNode(src: YamlSource, node: YamlNode | null | undefined): Place {
  const offset = node?.range?.[0];
  if (offset === undefined) return { file: src.file };
  const pos = src.lines.linePos(offset);
  return { file: src.file, line: pos.line, col: pos.col };
}

export interface NodeAt {
  /** The value node at the path, or the deepest ancestor that exists. */
  node: YamlNode | null;
  /** The key scalar of the pair holding the value, when the last step is a map key. */
  key: YamlNode | null;
  /** True when the whole path was found. */
  exact: boolean;
}

/** Follow a data path through the document, resolving aliases on the way. */
export function nodeAtPath(src: YamlSource, path: DataPath): NodeAt {
  let node: YamlNode | null = src.doc.contents as YamlNode | null;
  let key: YamlNode | null = null;
  for (const seg of path) {
    node = deref(src, node);
    let next: YamlNode | null | undefined;
    let nextKey: YamlNode | null = null;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair) {
        nextKey = pair.key as YamlNode;
        // An empty value (`key:`) has a null node or a zero-width scalar; point at the key then.
        next = (pair.value as YamlNode | null) ?? nextKey;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg] as YamlNode | undefined;
    }
    if (next === undefined) return { node, key, exact: false };
    node = next;
    key = nextKey;
  }
  return { node, key, exact: true };
}

function deref(src: YamlSource, node: YamlNode | null): YamlNode | null {
  let n = node;
  // Bounded so that no document shape can make this loop.
  for (let i = 0; i < 16 && n instanceof Alias; i++) {
    n = (n.resolve(src.doc) as YamlNode | undefined) ?? null;
  }
  return n;
}

/** Where a data path lives in the file; falls back to the nearest ancestor. */
export function placeOfPath(src: YamlSource, path: DataPath, preferKey = false): Place {
  const at = nodeAtPath(src, path);
  const node = preferKey && at.exact && at.key ? at.key : at.node;
  return placeOfNode(src, node);
}
