import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/index.js';
import { ROOT } from '../helpers/procs.js';

/**
 * The Kubernetes manifests cannot be applied here (no cluster), so this
 * checks what can be checked without one: every document parses, the
 * collector configs they embed load with sealtrail's own config loader, and
 * the Postgres deployment keeps the owner role's password to its migrate Job.
 */
const DIR = join(ROOT, 'deploy', 'kubernetes');
type Doc = Record<string, any>;
const docsOf = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as Doc;
  });

describe('deploy/kubernetes manifests', () => {
  it('every file parses, and every document has apiVersion, kind and a name', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
    expect(files).toContain('collector-postgres.yaml');
    for (const f of files) {
      for (const d of docsOf(f)) {
        expect(typeof d.apiVersion, f).toBe('string');
        expect(typeof d.kind, f).toBe('string');
        expect(typeof d.metadata?.name, f).toBe('string');
      }
    }
  });

  it('collector-postgres: the replicas run as the app role, only the migrate Job holds the owner password', () => {
    const docs = docsOf('collector-postgres.yaml');
    const byKind = (k: string) => docs.filter((d) => d.kind === k);
    const cm = byKind('ConfigMap')[0]!;
    const env = { SEALTRAIL_PG_APP_PASSWORD: 'app-pw', SEALTRAIL_PG_OWNER_PASSWORD: 'owner-pw' };
    const serving = parseConfigText(cm.data['collector.yaml'], 'collector.yaml', env).collector!;
    const migrate = parseConfigText(cm.data['migrate.yaml'], 'migrate.yaml', env).collector!;
    expect(serving.store).toMatchObject({ type: 'postgres' });
    expect((serving.store as { migrate_url?: string }).migrate_url).toBeUndefined();
    expect((migrate.store as { migrate_url?: string }).migrate_url).toContain('sealtrail_owner');
    expect(serving.keys?.signing_key_file).toBeTruthy();

    const job = byKind('Job')[0]!;
    const jobC = job.spec.template.spec.containers[0];
    expect(jobC.args.slice(0, 3)).toEqual(['migrate', '--config', '/etc/sealtrail/migrate.yaml']);
    const deploy = byKind('Deployment')[0]!;
    expect(deploy.spec.replicas).toBeGreaterThan(1);
    const c = deploy.spec.template.spec.containers[0];
    const envNames = (c.env as { name: string; valueFrom?: any }[]).map((e) => e.name);
    expect(envNames).not.toContain('SEALTRAIL_PG_OWNER_PASSWORD');
    expect(c.env.find((e: any) => e.name === 'POD_NAME').valueFrom.fieldRef.fieldPath).toBe('metadata.name');

    // Every file the serving config names lies under one of the container's mounts, each backed by a volume.
    const mounts = c.volumeMounts as { name: string; mountPath: string }[];
    const volumes = new Set((deploy.spec.template.spec.volumes as { name: string }[]).map((v) => v.name));
    for (const m of mounts) expect(volumes.has(m.name), m.name).toBe(true);
    const files = [
      ...serving.auth.admin_token_files,
      ...serving.streams.map((s: any) => s.vkey_file),
      ...serving.hmac_keys.map((k: any) => k.file),
      serving.keys!.signing_key_file,
      serving.keys!.hmac_key_file,
    ];
    for (const f of files) expect(mounts.some((m) => f === m.mountPath || f.startsWith(`${m.mountPath}/`)), f).toBe(true);
  });
});
