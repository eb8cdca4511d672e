import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../../src/sidecar/redact/index.js';

const PACKS = ['pii-basic', 'secrets', 'pci', 'hipaa', 'gdpr'];

describe('shipped packs', () => {
  it.each(PACKS)('%s loads on its own', (name) => {
    const rs = loadRuleset([join('config', 'redaction', `${name}.yaml`)]);
    expect(rs.ruleIds.length).toBeGreaterThan(0);
    expect(rs.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('all packs compose in one deployment file, even where two include the same pack', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-packs-'));
    const file = join(dir, 'deployment.yaml');
    writeFileSync(file, `include: [${PACKS.map((p) => `"pack:${p}"`).join(', ')}]\ndisable: [ipv4]\n`);
    const rs = loadRuleset([file]);
    expect(new Set(rs.ruleIds).size).toBe(rs.ruleIds.length);
    expect(rs.ruleIds).not.toContain('ipv4');
    const hits: Record<string, number> = {};
    const out = JSON.stringify(
      rs.redact({ note: 'mail ann@example.com, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE, ip 10.1.2.3' }, hits),
    );
    expect(out).not.toMatch(/ann@example\.com|4111 1111 1111 1111|AKIAIOSFODNN7EXAMPLE/);
    expect(out).toContain('10.1.2.3');
  });
});
