import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusGenerator, lightEvent, PACKS_FOR_CORPUS, PII_KINDS, RULES_FOR_KIND, writeCorpus, type CorpusLine, type PiiKind } from '../../bench/corpus.js';
import { loadRuleset } from '../../src/sidecar/redact/index.js';
import { ROOT } from '../helpers/procs.js';

/**
 * The benchmark corpora (bench/corpus.ts): the same seed gives the same
 * bytes, the pii corpus has the size and density the benchmarks claim, and
 * every item it plants is one the sidecar's own rules find, while its hex
 * ids, times and counts are left alone.
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-corpus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LINES = 5000;

function lines(corpus: 'light' | 'pii', count: number, seed?: number): CorpusLine[] {
  const next = corpusGenerator(corpus, seed);
  return Array.from({ length: count }, (_, n) => next(n));
}

/** Written independently of the generator's, so a wrong check digit cannot pass on both sides. */
function luhn(pan: string): boolean {
  const d = pan.replace(/[ -]/g, '').split('').reverse().map(Number);
  const sum = d.reduce((s, x, i) => s + (i % 2 ? (x * 2 > 9 ? x * 2 - 9 : x * 2) : x), 0);
  return d.length >= 13 && sum % 10 === 0;
}

describe('bench corpora', () => {
  it('are deterministic: the same seed writes the same bytes, another seed others', () => {
    for (const corpus of ['light', 'pii'] as const) {
      const [a, b] = [join(dir, `${corpus}-a.jsonl`), join(dir, `${corpus}-b.jsonl`)];
      const sa = writeCorpus(a, corpus, 2000, 7);
      const sb = writeCorpus(b, corpus, 2000, 7);
      expect(sa).toEqual(sb);
      expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
      expect(readFileSync(a, 'utf8')).toBe(`${lines(corpus, 2000, 7).map((l) => l.line).join('\n')}\n`);
    }
    writeCorpus(join(dir, 'pii-c.jsonl'), 'pii', 2000, 8);
    expect(readFileSync(join(dir, 'pii-c.jsonl')).equals(readFileSync(join(dir, 'pii-a.jsonl')))).toBe(false);
  });

  it('light is the event the whole-path benchmark has always used, byte for byte', () => {
    expect(lightEvent(42)).toBe(
      '{"event_type":"tool_invoked","time":"2026-11-22T00:00:00.042Z","tenant":"acme-health","actor":{"id":"user-42","type":"user"},' +
        '"agent":{"id":"agent-7","name":"claims-assistant"},"action":"lookup_claim","tool":{"name":"claims.search","arguments":{"claim_id":"CLM-100042",' +
        '"query":"status of claim for member 42, contact jane.doe42@example.com"}},"resource":{"type":"claim","id":"CLM-100042"},"outcome":"success",' +
        '"model":{"provider":"anthropic","name":"claude-sonnet"},"trace_id":"000000000000000000000019f519f70a","session_id":"sess-42","details":{"latency_ms":42,"tokens":162}}',
    );
  });

  it('pii: ~530 B a line, ~2.8 items a record, every kind present, every line an event', () => {
    const s = writeCorpus(join(dir, 'pii-stats.jsonl'), 'pii', LINES);
    expect(s.lines).toBe(LINES);
    expect(s.bytes / s.lines).toBeGreaterThanOrEqual(500);
    expect(s.bytes / s.lines).toBeLessThanOrEqual(560);
    expect(s.pii / s.lines).toBeGreaterThanOrEqual(2.5);
    expect(s.pii / s.lines).toBeLessThanOrEqual(3.1);
    for (const k of PII_KINDS) expect(s.byKind[k], k).toBeGreaterThan(LINES / 20);
    const types = new Set<string>();
    for (const l of readFileSync(join(dir, 'pii-stats.jsonl'), 'utf8').trimEnd().split('\n')) {
      const e = JSON.parse(l) as { event_type: string; trace_id: string };
      types.add(e.event_type);
      expect(e.trace_id).toMatch(/^[0-9a-f]{32}$/);
    }
    expect([...types].sort()).toEqual(['model_called', 'tool_completed', 'tool_invoked']);
  });

  it('pii: planted values are in their lines, and card numbers pass Luhn', () => {
    let cards = 0;
    for (const { line, items, values } of lines('pii', LINES)) {
      expect(values).toHaveLength(items.length);
      items.forEach((k, i) => {
        expect(line).toContain(values[i]);
        if (k === 'card') {
          cards++;
          expect(luhn(values[i]!), values[i]).toBe(true);
        }
      });
    }
    expect(cards).toBeGreaterThan(500);
  });

  it("pii: the sidecar's rules find the planted items and nothing else", () => {
    const ruleset = loadRuleset(PACKS_FOR_CORPUS.pii.map((p) => join(ROOT, `config/redaction/${p}.yaml`)));
    const planted = Object.fromEntries(PII_KINDS.map((k) => [k, 0])) as Record<PiiKind, number>;
    const hits: Record<string, number> = {};
    for (const { line, items } of lines('pii', 2000)) {
      for (const k of items) planted[k]++;
      const redacted = JSON.stringify(ruleset.redact(JSON.parse(line), hits, { text: line }));
      expect(redacted).not.toMatch(/@[a-z-]+\.[a-z]/);
    }
    for (const k of PII_KINDS) {
      const found = RULES_FOR_KIND[k].reduce((n, r) => n + (hits[r] ?? 0), 0);
      expect(found, k).toBeGreaterThanOrEqual(0.95 * planted[k]);
    }
    const total = Object.values(hits).reduce((a, b) => a + b, 0);
    const all = Object.values(planted).reduce((a, b) => a + b, 0);
    // Hex ids, times and counts flagged as personal data would push this up.
    expect(total).toBeLessThanOrEqual(1.02 * all);
  });

  it('light: its one email a record is found by pii-basic', () => {
    const ruleset = loadRuleset(PACKS_FOR_CORPUS.light.map((p) => join(ROOT, `config/redaction/${p}.yaml`)));
    const hits: Record<string, number> = {};
    for (const { line } of lines('light', 500)) ruleset.redact(JSON.parse(line), hits, { text: line });
    expect(hits).toEqual({ email: 500 });
  });
});
