import { describe, it, expect } from 'vitest';
import { canonicalize, canonicalBytes, MAX_DEPTH, parseCanonical } from '../../src/core/canonical.js';
import { CanonicalError } from '../../src/core/errors.js';
import { prng } from '../helpers/prng.js';
import { codeOf as codeOfError } from '../helpers/errors.js';

const codeOf = (fn: () => unknown): string | undefined => codeOfError(fn, CanonicalError);

describe('RFC 8785 published examples', () => {
  // RFC 8785 §3.2.2 input and §3.2.3 expected output
  // (source: cyberphone/ietf-json-canon xmlv3/rfc8785.xml).
  const rfcInput = String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50,
                2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`;
  const rfcOutput = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"` +
    '\u20ac' +
    String.raw`$\u000f\nA'B\"\\\\\"/"}`;
  // RFC 8785 §3.2.4 UTF-8 bytes of the same sample.
  const rfcHex =
    '7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 ' +
    '75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a ' +
    '5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 ' +
    '65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 ' +
    '5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 ' +
    '30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d';

  it('§3.2.2/§3.2.3 main sample canonicalises to the published text', () => {
    expect(canonicalize(JSON.parse(rfcInput))).toBe(rfcOutput);
  });

  it('§3.2.4 main sample gives the published UTF-8 bytes', () => {
    expect(canonicalBytes(JSON.parse(rfcInput)).toString('hex')).toBe(rfcHex.replace(/ /g, ''));
  });

  it('§3.2.3 sorting example gives the published property order', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    const expectedOrder = [
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ];
    const out = JSON.parse(canonicalize(JSON.parse(input))) as Record<string, string>;
    // JSON.parse keeps string-key insertion order except for integer-like keys,
    // so compare the order of values in the canonical text itself.
    const text = canonicalize(JSON.parse(input));
    const positions = expectedOrder.map((v) => text.indexOf(`"${v}"`));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(Object.keys(out)).toHaveLength(7);
  });

  it('§3.2.3 "" < "a" < "aa" < "ab"', () => {
    expect(canonicalize({ ab: 4, aa: 3, a: 2, '': 1 })).toBe('{"":1,"a":2,"aa":3,"ab":4}');
  });

  // RFC 8785 Appendix B, "ECMAScript-Compatible JSON Number Serialization Samples".
  const appendixB: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  for (const [hex, expected] of appendixB) {
    it(`Appendix B: 0x${hex} -> ${expected}`, () => {
      const n = Buffer.from(hex, 'hex').readDoubleBE(0);
      expect(canonicalize(n)).toBe(expected);
      expect(canonicalize([n])).toBe(`[${expected}]`);
    });
  }

  it('Appendix B: NaN (0x7fffffffffffffff) and Infinity (0x7ff0000000000000) are refused', () => {
    for (const hex of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
      const n = Buffer.from(hex, 'hex').readDoubleBE(0);
      expect(codeOf(() => canonicalize(n))).toBe('canonical_invalid');
      expect(codeOf(() => canonicalize({ a: [n] }))).toBe('canonical_invalid');
    }
  });
});

describe('cyberphone/json-canonicalization testdata', () => {
  // input/*.json and output/*.json of the RFC author's reference repository.
  // Non-ASCII expected characters are written as escapes so that no editor or
  // Unicode normalisation can silently change them (U+FB33 has no NFC form).
  const cases: { name: string; input: string; output: string }[] = [
    {
      name: 'values',
      input: String.raw`{
  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],
  "escaping": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
      output:
        '{"escaping":"\u20ac' +
        String.raw`$\u000f\nA'B\"\\\\\"/","literals":[null,true,false],"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}`,
    },
    {
      name: 'structures',
      input: String.raw`{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ { } ],
  "A": { }
}`,
      output: String.raw`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}`,
    },
    {
      name: 'weird',
      input: String.raw`{
  "\u20ac": "Euro Sign",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}
`,
      output:
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",' +
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",' +
        '"\ud83d\ude02":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    },
    {
      name: 'french',
      input:
        '{\n  "peach": "This sorting order",\n  "p\u00e9ch\u00e9": "is wrong according to French",\n' +
        '  "p\u00eache": "but canonicalization MUST",\n  "sin":   "ingnore locale"\n}\n',
      output:
        '{"peach":"This sorting order","p\u00e9ch\u00e9":"is wrong according to French",' +
        '"p\u00eache":"but canonicalization MUST","sin":"ingnore locale"}',
    },
    {
      name: 'unicode',
      input: String.raw`{
  "Unnormalized Unicode":"\u1e0d\u0307"
}
`,
      output: '{"Unnormalized Unicode":"\u1e0d\u0307"}',
    },
    {
      name: 'simpleString',
      input: '    "this is a test string 1235"',
      output: '"this is a test string 1235"',
    },
  ];
  for (const c of cases) {
    it(`${c.name}.json`, () => {
      expect(canonicalize(JSON.parse(c.input))).toBe(c.output);
    });
  }

  it('outhex/simpleString.txt bytes', () => {
    const hex = '22 74 68 69 73 20 69 73 20 61 20 74 65 73 74 20 73 74 72 69 6E 67 20 31 32 33 35 22';
    expect(canonicalBytes(JSON.parse(cases[5]!.input)).toString('hex')).toBe(hex.replace(/ /g, '').toLowerCase());
  });
});

describe('strings', () => {
  it('escapes C0 controls in lowercase hex, with the five short forms', () => {
    let s = '';
    for (let c = 0; c < 0x20; c++) s += String.fromCharCode(c);
    expect(canonicalize(s)).toBe(
      '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
        '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"',
    );
  });

  it('leaves DEL, non-ASCII and "/" unescaped', () => {
    expect(canonicalize('\u007f/\u00e9\u2028\ud83d\ude00')).toBe('"\u007f/\u00e9\u2028\ud83d\ude00"');
  });

  it('refuses lone surrogates in values and keys (RFC 8785 §3.2.2.2, I-JSON)', () => {
    for (const v of ['a\ud800b', '\udfff', { '\udead': 1 }, ['x\udc00']]) {
      expect(() => canonicalize(v)).toThrowError(expect.objectContaining({ code: 'canonical_invalid' }));
    }
    // a properly paired surrogate is fine
    expect(canonicalize('\ud83d\ude00')).toBe('"\ud83d\ude00"');
  });

  it('sorts keys by UTF-16 code units, not code points or locale', () => {
    // U+FB33 (one unit, 0xFB33) sorts after U+1F600 (surrogates 0xD83D...).
    const obj = { '\ufb33': 1, '\ud83d\ude00': 2, '\u00e9': 3, e: 4, E: 5, '10': 6, '9': 7 };
    expect(canonicalize(obj)).toBe('{"10":6,"9":7,"E":5,"e":4,"\u00e9":3,"\ud83d\ude00":2,"\ufb33":1}');
  });
});

describe('key sorting for large objects', () => {
  it('objects with many keys (both sort paths) sort by code units', () => {
    const rnd = prng(7);
    for (const n of [2, 31, 32, 33, 200]) {
      const o: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        // BMP characters and astral ones (surrogate pairs), never a lone surrogate.
        const k = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
          const c = 0x20 + Math.floor(rnd() * 0xffd0);
          return c >= 0xd800 && c <= 0xdfff ? String.fromCodePoint(0x10000 + (c - 0xd800) * 64) : String.fromCharCode(c);
        }).join('');
        o[k] = i;
      }
      // Build the expectation without the engine's sort: pairwise code-unit comparison.
      const keys = Object.keys(o);
      const cmp = (a: string, b: string): number => {
        for (let i = 0; i < Math.min(a.length, b.length); i++) {
          if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.charCodeAt(i) - b.charCodeAt(i);
        }
        return a.length - b.length;
      };
      const expected = keys.slice().sort(cmp);
      const parsed = canonicalize(o);
      const order = expected.map((k) => parsed.indexOf(JSON.stringify(k) + ':'));
      expect(order.every((p, i) => p >= 0 && (i === 0 || p > order[i - 1]!))).toBe(true);
    }
  });
});

describe('values', () => {
  it('literals, -0, integers', () => {
    expect(canonicalize(null)).toBe('null');
    expect(canonicalize(true)).toBe('true');
    expect(canonicalize(false)).toBe('false');
    expect(canonicalize(-0)).toBe('0');
    expect(canonicalize([0, -0, 1, -1, 1e21, 1e-7, 123456789012])).toBe('[0,0,1,-1,1e+21,1e-7,123456789012]');
  });

  it('skips undefined properties like JSON.stringify', () => {
    expect(canonicalize({ b: undefined, a: 1, c: { d: undefined } })).toBe('{"a":1,"c":{}}');
  });

  it('accepts null-prototype objects and shared (non-cyclic) references', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.z = 1;
    o.a = 2;
    expect(canonicalize(o)).toBe('{"a":2,"z":1}');
    const shared = { x: [1] };
    expect(canonicalize({ a: shared, b: shared, c: [shared, shared] })).toBe(
      '{"a":{"x":[1]},"b":{"x":[1]},"c":[{"x":[1]},{"x":[1]}]}',
    );
  });

  it('keeps a "__proto__" key from parsed JSON', () => {
    expect(canonicalize(JSON.parse('{"__proto__":{"a":1},"b":2}'))).toBe('{"__proto__":{"a":1},"b":2}');
  });

  it('ignores symbol keys and non-enumerable properties', () => {
    const o: Record<string | symbol, unknown> = { a: 1 };
    o[Symbol('s')] = 2;
    Object.defineProperty(o, 'hidden', { value: 3, enumerable: false });
    expect(canonicalize(o)).toBe('{"a":1}');
  });
});

describe('hostile input', () => {
  const refused: [string, unknown][] = [
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['NaN in object', { a: NaN }],
    ['top-level undefined', undefined],
    ['undefined in array', [1, undefined]],
    ['array hole', [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['function value', { f: () => 1 }],
    ['symbol value', { s: Symbol('x') }],
    ['bigint', 1n],
    ['bigint in array', [1n]],
    ['Date', new Date(0)],
    ['Map', new Map()],
    ['Set', new Set()],
    ['Buffer', Buffer.from('x')],
    ['Uint8Array', new Uint8Array(2)],
    ['boxed Number', Object(1) as unknown],
    ['boxed String', Object('s') as unknown],
    ['RegExp', /x/],
    ['class instance', new (class Foo {
      a = 1;
    })()],
    ['object with toJSON function', { toJSON: () => 'x' }],
  ];
  for (const [name, v] of refused) {
    it(`refuses ${name} with canonical_invalid`, () => {
      expect(codeOf(() => canonicalize(v))).toBe('canonical_invalid');
    });
  }

  it('refuses cycles (object, array, indirect) with canonical_invalid', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(codeOf(() => canonicalize(a))).toBe('canonical_invalid');
    const arr: unknown[] = [];
    arr.push(arr);
    expect(codeOf(() => canonicalize(arr))).toBe('canonical_invalid');
    const x: Record<string, unknown> = {};
    const y: Record<string, unknown> = { x };
    x.list = [1, { y }];
    expect(codeOf(() => canonicalize({ root: x }))).toBe('canonical_invalid');
  });

  it('never puts the value in the error message', () => {
    const secret = 'patient-ssn-123-45-6789';
    for (const v of [{ [secret]: NaN }, { k: [secret, undefined] }, { [secret]: new Date() }]) {
      try {
        canonicalize(v);
        expect.unreachable();
      } catch (e) {
        expect((e as Error).message).not.toContain(secret);
        expect((e as Error).message).not.toContain('NaN,');
      }
    }
  });

  it('10k-deep nesting throws canonical_too_deep instead of overflowing the stack', () => {
    let deepArr: unknown = 1;
    let deepObj: unknown = 1;
    for (let i = 0; i < 10_000; i++) {
      deepArr = [deepArr];
      deepObj = { a: deepObj };
    }
    expect(codeOf(() => canonicalize(deepArr))).toBe('canonical_too_deep');
    expect(codeOf(() => canonicalize(deepObj))).toBe('canonical_too_deep');
    // A 10k-deep JSON text, parsed, too.
    const text = '['.repeat(10_000) + ']'.repeat(10_000);
    expect(codeOf(() => canonicalize(JSON.parse(text)))).toBe('canonical_too_deep');
  });

  it(`accepts exactly ${MAX_DEPTH} levels of nesting and refuses ${MAX_DEPTH + 1}`, () => {
    let v: unknown = 0;
    for (let i = 0; i < MAX_DEPTH; i++) v = [v];
    expect(canonicalize(v)).toBe('['.repeat(MAX_DEPTH) + '0' + ']'.repeat(MAX_DEPTH));
    expect(codeOf(() => canonicalize([v]))).toBe('canonical_too_deep');
  });
});

describe('properties (seeded)', () => {
  const rnd = prng(0x5ea17a11);
  const alphabet = ['a', 'b', 'B', '_', '1', '\u00e9', '\u20ac', '\ud83d\ude00', '\n', '"', '\\', '\u0000', '\ufb33'];
  function randString(): string {
    let s = '';
    const n = Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    return s;
  }
  function randNumber(): number {
    switch (Math.floor(rnd() * 4)) {
      case 0:
        return Math.floor(rnd() * 2 ** 53) * (rnd() < 0.5 ? -1 : 1);
      case 1:
        return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20);
      case 2: {
        // random bit patterns, skipping NaN/Infinity
        const b = Buffer.alloc(8);
        for (let i = 0; i < 8; i++) b[i] = Math.floor(rnd() * 256);
        const n = b.readDoubleBE(0);
        return Number.isFinite(n) ? n : 0;
      }
      default:
        return Math.floor(rnd() * 1000);
    }
  }
  function randValue(depth: number): unknown {
    const r = rnd();
    if (depth > 4 || r < 0.3) {
      const t = Math.floor(rnd() * 5);
      return t === 0 ? null : t === 1 ? rnd() < 0.5 : t === 2 ? randNumber() : randString();
    }
    if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randValue(depth + 1));
    const o: Record<string, unknown> = {};
    const n = Math.floor(rnd() * 5);
    for (let i = 0; i < n; i++) o[randString()] = randValue(depth + 1);
    return o;
  }
  // Independent reference: rebuild objects with code-unit-sorted insertion and
  // let the engine's JSON.stringify do the rest. Integer-like keys break
  // insertion order, so the reference only works without them.
  function sortDeep(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortDeep);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) out[k] = sortDeep((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  }
  function hasIntegerKey(v: unknown): boolean {
    if (Array.isArray(v)) return v.some(hasIntegerKey);
    if (v !== null && typeof v === 'object') {
      return Object.keys(v).some((k) => /^(0|[1-9][0-9]*)$/.test(k) || hasIntegerKey((v as Record<string, unknown>)[k]));
    }
    return false;
  }

  it('matches a sort-then-JSON.stringify reference and is idempotent (2000 random values)', () => {
    let compared = 0;
    for (let i = 0; i < 2000; i++) {
      const v = randValue(0);
      const c = canonicalize(v);
      expect(canonicalize(JSON.parse(c))).toBe(c);
      if (!hasIntegerKey(v)) {
        expect(c).toBe(JSON.stringify(sortDeep(v)));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });
});

describe('parseCanonical', () => {
  /** The definition parseCanonical must agree with. */
  const reference = (text: string): boolean => {
    try {
      return canonicalize(JSON.parse(text)) === text;
    } catch {
      return false;
    }
  };

  it('agrees with canonicalize(JSON.parse(text)) === text on random values and their near misses', () => {
    const rnd = prng(8785);
    const keyPool = ['a', 'b', 'B', '_', '1', '2', '9', '10', '01', '-1', '1.5', '4294967295', '4294967294', 'é', '€', '😀', '\u2028', '__proto__', 'toJSON', ''];
    const strPool = ['x', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '😀', '\ud800', '\udc00', '</script>', ''];
    const numPool = [0, -0, 1, -1, 1.5, 1e21, 1e-7, 123456789012345680000, 5e-324, 2 ** 53, 0.1 + 0.2];
    const gen = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3) {
        const k = Math.floor(rnd() * 5);
        if (k === 0) return numPool[Math.floor(rnd() * numPool.length)];
        if (k === 1) return rnd() < 0.5;
        if (k === 2) return null;
        return Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => strPool[Math.floor(rnd() * strPool.length)]).join('');
      }
      if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 5); i > 0; i--) o[keyPool[Math.floor(rnd() * keyPool.length)]!] = gen(depth + 1);
      return o;
    };
    const texts: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const v = gen(0);
      let c: string | undefined;
      try {
        c = canonicalize(v);
      } catch {
        c = undefined; // lone surrogates: still try JSON.stringify's form below
      }
      if (c !== undefined) texts.push(c);
      texts.push(JSON.stringify(v) ?? 'null');
      // Near misses: a member moved, a space, an escape written differently, a number re-spelled.
      if (c !== undefined && c.length > 2) {
        const at = 1 + Math.floor(rnd() * (c.length - 2));
        texts.push(c.slice(0, at) + ' ' + c.slice(at));
        texts.push(c.replace('\\u001f', '\\u001F').replace('"x"', '"\\u0078"').replace(':1,', ':1.0,').replace(':0,', ':-0,'));
      }
    }
    texts.push('{"10":1,"9":2}', '{"9":2,"10":1}', '{"1":1,"b":2}', '{"b":2,"1":1}', '{"a":1,"a":1}', '{"__proto__":1}', '"\\ud800"',
      '"\\uD83D\\uDE00"', '"😀"', '1e400', '-0', '[' + '['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH) + ']', '[[]]', 'nul', '');
    let canonicalCount = 0;
    for (const t of texts) {
      const want = reference(t);
      const got = parseCanonical(t);
      expect(got !== undefined, t.slice(0, 80)).toBe(want);
      if (want) {
        canonicalCount++;
        expect(canonicalize(got), t.slice(0, 80)).toBe(t);
      }
    }
    // Both sides of the question were asked many times.
    expect(canonicalCount).toBeGreaterThan(2000);
    expect(texts.length - canonicalCount).toBeGreaterThan(2000);
  });

  it('accepts canonical integer-like keys that V8 enumerates in another order', () => {
    expect(parseCanonical('{"10":1,"9":2}')).toEqual({ 10: 1, 9: 2 });
    expect(parseCanonical('{"9":2,"10":1}')).toBeUndefined();
  });
});
