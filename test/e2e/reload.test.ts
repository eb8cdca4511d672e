/**
 * SIGHUP reloads the redaction rules atomically (issue 2, item 6): records
 * read after a good reload carry the new ruleset hash and its redactions; a
 * bad rule file is refused with its file:line:col in the log, and the sidecar
 * keeps running with the rules it had.
 */
import { appendFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRuleset } from '../../src/sidecar/redact/index.js';
import { queryAll, type Deployment } from '../helpers/deployment.js';
import { stop, waitFor, type Proc } from '../helpers/procs.js';
import { makeRedactionDeployment, startCollector, startSidecar, waitDelivered } from '../helpers/redaction-deployment.js';

const EMAIL_RULE = `  - id: email
    pattern: '(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}'
`;
const V1 = `rules:\n${EMAIL_RULE}`;
const V2 = `rules:\n${EMAIL_RULE}  - id: phone
    pattern: '\\+[1-9][0-9]{7,14}\\b'
    replace: '[REDACTED:phone]'
`;
// line 5, the pattern of the second rule: RE2 has no backreferences
const BAD = `rules:\n${EMAIL_RULE}  - id: phone
    pattern: '(\\+[0-9])\\1'
`;
const BAD_LINE = 5;

function event(phase: string, n: number): string {
  return `${JSON.stringify({
    event_type: 'tool_invoked',
    time: new Date(Date.UTC(2026, 10, 22, 12) + n).toISOString(),
    tenant: 'acme',
    actor: { id: 'user-1', type: 'user' },
    tool: { name: 'sms.send', arguments: { to: `+1415555${String(1000 + n)}`, cc: `person${n}@example.com` } },
    details: { phase, n },
  })}\n`;
}

/** Replace the rules file the way a ConfigMap update or an editor does: a new file renamed over it. */
function replaceRules(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function count(haystack: string, needle: RegExp): number {
  return haystack.match(new RegExp(needle.source, 'g'))?.length ?? 0;
}

describe('SIGHUP reloads redaction rules', () => {
  let d: Deployment;
  let rules: string;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  const trace = (): string => join(d.traces, 'agent.jsonl');
  const hashes: { v1?: string; v2?: string } = {};
  let written = 0;

  const write = async (phase: string, n: number): Promise<void> => {
    let text = '';
    for (let i = 0; i < n; i++) text += event(phase, written + i);
    appendFileSync(trace(), text);
    written += n;
    await waitDelivered(d, written, 60_000);
  };

  beforeAll(async () => {
    d = await makeRedactionDeployment({ rules: (dir) => [join(dir, 'rules.yaml')] });
    rules = join(d.dir, 'rules.yaml');
    writeFileSync(rules, V1);
    hashes.v1 = loadRuleset([rules]).hash;
    collector = await startCollector(d);
    sidecar = await startSidecar(d);
  }, 60_000);

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
    if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('v1 (email only): email redacted, phone kept', async () => {
    await write('v1', 3);
    const items = (await queryAll(d)).map((i) => i.record).filter((r) => r.details.phase === 'v1');
    expect(items).toHaveLength(3);
    for (const r of items) {
      expect(r.redaction.ruleset).toBe(hashes.v1);
      expect(r.tool.arguments.cc).toBe('[REDACTED:email]');
      expect(r.tool.arguments.to).toMatch(/^\+1415555\d{4}$/);
      expect(r.redaction.hits).toEqual({ email: 1 });
    }
  }, 90_000);

  it('SIGHUP after the file became v2 (adds phone): later records carry the v2 hash and the phone redacted', async () => {
    replaceRules(rules, V2);
    hashes.v2 = loadRuleset([rules]).hash;
    expect(hashes.v2).not.toBe(hashes.v1);
    sidecar!.child.kill('SIGHUP');
    await waitFor('reload logged', () => count(sidecar!.stderr(), /redaction rules reloaded/) === 1, 15_000);
    expect(sidecar!.stderr()).toContain(hashes.v2!);

    await write('v2', 3);
    const all = (await queryAll(d)).map((i) => i.record);
    const v2 = all.filter((r) => r.details.phase === 'v2');
    expect(v2).toHaveLength(3);
    for (const r of v2) {
      expect(r.redaction.ruleset).toBe(hashes.v2);
      expect(r.tool.arguments.to).toBe('[REDACTED:phone]');
      expect(r.tool.arguments.cc).toBe('[REDACTED:email]');
      expect(r.redaction.hits).toEqual({ email: 1, phone: 1 });
    }
    // records already written keep the rules they were redacted with
    for (const r of all.filter((x) => x.details.phase === 'v1')) expect(r.redaction.ruleset).toBe(hashes.v1);
  }, 90_000);

  it('SIGHUP with an invalid file: logs file:line:col, keeps running with v2', async () => {
    replaceRules(rules, BAD);
    sidecar!.child.kill('SIGHUP');
    await waitFor('failed reload logged', () => /NOT reloaded/.test(sidecar!.stderr()), 15_000);
    const line = sidecar!.stderr().split('\n').find((l) => /NOT reloaded/.test(l))!;
    expect(line).toContain(`${rules}:${BAD_LINE}:`);
    expect(line).toMatch(new RegExp(`${rules.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${BAD_LINE}:\\d+`));
    expect(line).toMatch(/redaction_rule_invalid/);
    expect(count(sidecar!.stderr(), /redaction rules reloaded/)).toBe(1);

    await write('bad', 3);
    expect(sidecar!.child.exitCode).toBeNull();
    const bad = (await queryAll(d)).map((i) => i.record).filter((r) => r.details.phase === 'bad');
    expect(bad).toHaveLength(3);
    for (const r of bad) {
      expect(r.redaction.ruleset).toBe(hashes.v2);
      expect(r.tool.arguments.to).toBe('[REDACTED:phone]');
    }
  }, 90_000);

  it('stops with exit 0 on SIGTERM afterwards, all records verified in order', async () => {
    const all = (await queryAll(d)).map((i) => i.record).sort((a, b) => a.seq - b.seq);
    expect(all.map((r) => r.seq)).toEqual([...Array(9).keys()]);
    expect(all.map((r) => r.details.phase)).toEqual(['v1', 'v1', 'v1', 'v2', 'v2', 'v2', 'bad', 'bad', 'bad']);
    expect((await stop(sidecar!)).code).toBe(0);
    expect((await stop(collector!)).code).toBe(0);
  }, 60_000);
});
