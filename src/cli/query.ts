import { canonicalize } from '../core/canonical.js';
import { getJsonObject } from '../evidence/http.js';
import { TLS_ARG_SPEC, useCollectorTls } from './collector-tls.js';
import { checkUrl, FILTER_ARG_SPEC, filterParams, resolveToken } from './filters.js';
import { EXIT_FAIL, EXIT_OK, parse, UsageError } from './usage.js';

/**
 * sealtrail query --url URL [--token T] [TLS flags] [filters] [--order asc|desc] [--limit N] [--cursor C] [--all] [--proof]
 *
 * GET /v1/audit from the command line: one item per line on stdout (RFC 8785
 * JSON, so the record inside keeps its canonical bytes). --limit is the page
 * size (1..1000, default 100); --all follows next_cursor to the end, else
 * one page is printed and the next cursor, if any, goes to stderr.
 */
export async function queryCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    url: { type: 'string' },
    token: { type: 'string' },
    order: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    all: { type: 'boolean', default: false },
    proof: { type: 'boolean', default: false },
    ...FILTER_ARG_SPEC,
    ...TLS_ARG_SPEC,
  });
  const url = checkUrl(values.url, 'query');
  const params: Record<string, string> = filterParams(values);
  if (values.order !== undefined) {
    if (values.order !== 'asc' && values.order !== 'desc') throw new UsageError('--order must be asc or desc');
    params.order = values.order;
  }
  const limit = values.limit ?? '100';
  if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new UsageError('--limit must be 1..1000');
  params.limit = String(Number(limit));
  if (values.proof) params.proof = 'true';
  const token = resolveToken(values.token, 'query');
  useCollectorTls(values, url);
  let cursor: string | null = values.cursor ?? null;
  let printed = 0;
  for (;;) {
    const q = new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) });
    const page = await getJsonObject(url, `/v1/audit?${q.toString()}`, token);
    if (!Array.isArray(page.items)) {
      process.stderr.write('sealtrail query: collector answer has no items\n');
      return EXIT_FAIL;
    }
    let out = '';
    for (const it of page.items) out += `${canonicalize(it)}\n`;
    if (out.length > 0 && !process.stdout.write(out)) {
      await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
    }
    printed += page.items.length;
    cursor = typeof page.next_cursor === 'string' ? page.next_cursor : null;
    if (cursor === null) break;
    if (!values.all) {
      process.stderr.write(`more results: --cursor ${cursor} (or --all)\n`);
      break;
    }
  }
  process.stderr.write(`${printed} item(s)\n`);
  return EXIT_OK;
}
