import RE2 from 're2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AnyOf, PATTERNS_PER_SET } from '../../src/sidecar/redact/any-of.js';
import { loadRuleset } from '../../src/sidecar/redact/index.js';
import { withoutUpperBounds } from '../../src/sidecar/redact/pattern.js';
import { RuleSieve } from '../../src/sidecar/redact/rule-sieve.js';
import { corpusGenerator } from '../../bench/corpus.js';
import { prng } from '../helpers/prng.js';

// The bundled packs' rule patterns: the sets these classes are built for.
const PATTERNS: string[] = (
  loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']) as unknown as { rules: { pattern: string }[] }
).rules.map((r) => r.pattern);

const PIECES = [
  'bob@example.com', '123-45-6789', '4111 1111 1111 1111', '+447700900123', '10.0.0.1', 'plain text', 'Bearer abc.def',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln', 'AKIA0123456789ABCDEF', 'password=hunter2', 'ü', '😀', '\u0000', ' ', '-',
  '555 0100', 'ghp_', '0123456789abcdef', 'x',
];

function randomText(r: () => number): string {
  let s = '';
  for (let n = Math.floor(r() * 6); n > 0; n--) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

/** Texts to hold the classes to: random mixes, and real lines of the benchmark's PII corpus. */
function texts(): string[] {
  const r = prng(20261207);
  const out: string[] = [];
  for (let i = 0; i < 1500; i++) out.push(randomText(r));
  const gen = corpusGenerator('pii');
  for (let i = 0; i < 300; i++) out.push(gen(i).line);
  return out;
}

/** Each pattern on its own: the answer both classes must give. */
const single = PATTERNS.map((p) => new RE2(p));
const matchesOf = (t: string): number[] => single.flatMap((re, i) => (re.test(t) ? [i] : []));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('AnyOf (probe: does any pattern match?)', () => {
  const any = AnyOf.build(PATTERNS)!;

  it('splits the patterns into groups of at most PATTERNS_PER_SET', () => {
    expect(any.groupCount).toBe(Math.ceil(PATTERNS.length / PATTERNS_PER_SET));
  });

  it('answers as each pattern tested on its own does, on strings and on UTF-8 buffers', () => {
    let hits = 0;
    for (const t of texts()) {
      const want = matchesOf(t).length > 0;
      if (want) hits++;
      expect(any.test(t), t).toBe(want);
      expect(any.test(Buffer.from(t, 'utf8')), t).toBe(want);
      const groups = Array.from({ length: any.groupCount }, (_, g) => any.testGroup(g, t));
      expect(groups.some(Boolean), t).toBe(want);
    }
    expect(hits).toBeGreaterThan(300); // the texts exercise both answers
  });

  it('still answers exactly when every Set throws (its DFA out of memory): the alternation decides', () => {
    vi.spyOn(RE2.Set.prototype, 'test').mockImplementation(() => {
      throw new Error('RE2.Set matching failed: out of memory.');
    });
    for (const t of texts().slice(0, 400)) expect(any.test(t), t).toBe(matchesOf(t).length > 0);
  });

  it('is undefined when RE2 cannot read a pattern, and for no patterns', () => {
    expect(AnyOf.build(['(?<=a)b'])).toBeUndefined();
    expect(AnyOf.build([])).toBeUndefined();
  });
});

describe('RuleSieve (which patterns match?)', () => {
  const sieve = new RuleSieve(PATTERNS);

  it('names exactly the patterns that match, in ascending order', () => {
    let multi = 0;
    for (const t of texts()) {
      const want = matchesOf(t);
      if (want.length > 1) multi++;
      expect(sieve.matching(t), t).toEqual(want);
      expect(sieve.matching(Buffer.from(t, 'utf8')), t).toEqual(want);
    }
    expect(multi).toBeGreaterThan(100); // several patterns in one text, so a known half is skipped and both halves asked
  });

  it('widens, never narrows, when a Set throws: every pattern below it is named', () => {
    const t = 'mail bob@example.com';
    vi.spyOn(RE2.Set.prototype, 'test').mockImplementation(() => {
      throw new Error('RE2.Set matching failed: out of memory.');
    });
    expect(sieve.matching(t)).toEqual(PATTERNS.map((_, i) => i));
  });

  it('with an allow-list, names every allowed pattern that matches and no other', () => {
    const r = prng(7);
    let named = 0;
    for (const t of texts().slice(0, 600)) {
      const allow = Uint8Array.from(PATTERNS, () => (r() < 0.4 ? 1 : 0));
      const got = sieve.matching(t, allow);
      for (const i of got) expect(allow[i], `${t}: pattern ${i}`).toBe(1);
      const want = matchesOf(t).filter((i) => allow[i]);
      // may over-answer (unbounded repetitions), never miss
      for (const i of want) expect(got, t).toContain(i);
      named += got.length;
    }
    expect(named).toBeGreaterThan(100);
    expect(sieve.matching('bob@example.com', new Uint8Array(PATTERNS.length))).toEqual([]);
  });

  it('works for one pattern and for none', () => {
    expect(new RuleSieve(['a+']).matching('baa')).toEqual([0]);
    expect(new RuleSieve(['a+']).matching('bbb')).toEqual([]);
    expect(new RuleSieve([]).matching('x')).toEqual([]);
  });
});

describe('the engine with both bundled packs (20 rules), probed through these classes', () => {
  it('redacts the benchmark PII corpus exactly as redacting every string one by one does', () => {
    const rs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);
    const gen = corpusGenerator('pii');
    let replaced = 0;
    for (let i = 0; i < 400; i++) {
      const line = gen(i).line;
      const h1: Record<string, number> = {};
      const h2: Record<string, number> = {};
      const fast = rs.redact(JSON.parse(line), h1, { text: line });
      const slow = rs.redactUnprobed(JSON.parse(line), h2);
      expect(fast, line).toEqual(slow);
      expect(h1, line).toEqual(h2);
      for (const n of Object.values(h1)) replaced += n;
    }
    expect(replaced).toBeGreaterThan(800); // ~2.85 items a line are planted
  });
});

describe('withoutUpperBounds (patterns for tests that may over-answer)', () => {
  it('opens bounded repetitions and leaves classes, escapes and exact counts alone', () => {
    expect(withoutUpperBounds("[a-z0-9._%+'-]{1,64}@(?:[a-z0-9-]{1,63}\\.){1,8}[a-z]{2,63}")).toBe(
      "[a-z0-9._%+'-]{1,}@(?:[a-z0-9-]{1,}\\.){1,}[a-z]{2,}",
    );
    expect(withoutUpperBounds('[0-9]{3}-[0-9]{2,}-x{0,4}?')).toBe('[0-9]{3}-[0-9]{2,}-x{0,}?');
    expect(withoutUpperBounds('[{1,2}]a\\{1,2}\\p{Greek}{2,3}')).toBe('[{1,2}]a\\{1,2}\\p{Greek}{2,}');
    expect(withoutUpperBounds('a{,3}b{')).toBe('a{,3}b{'); // not repetitions in RE2: literal braces
    expect(withoutUpperBounds('\\Qa{1,2}\\E')).toBeUndefined();
  });

  it('matches every text the bundled patterns match (it only widens)', () => {
    let matched = 0;
    for (let i = 0; i < PATTERNS.length; i++) {
      const original = single[i]!;
      const open = new RE2(withoutUpperBounds(PATTERNS[i]!)!);
      for (const t of texts()) {
        if (!original.test(t)) continue;
        matched++;
        expect(open.test(t), `${PATTERNS[i]} on ${t}`).toBe(true);
      }
    }
    expect(matched).toBeGreaterThan(1000);
  });
});
