import { describe, expect, it } from 'vitest';
import { ShipIdentities } from '../../src/collector/ship-identities.js';
import type { ShipIdentity } from '../../src/collector/options.js';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError, HttpError } from '../../src/core/errors.js';
import { defaultStreamId } from '../../src/sidecar/stream-id.js';
import { thrown } from '../helpers/errors.js';

/**
 * Per-pod ship identities: `{pod}` in a SAN captures the pod a certificate
 * was issued to (cert-manager's csi-driver gives every pod its own), and
 * `{pod}-*` in streams is exactly that pod's streams. The socket here is a
 * verified TLS socket as the collector sees it (authorized, with the peer's
 * SANs as Node prints them); test/e2e/kubernetes-manifests.test.ts does the
 * same over real mTLS.
 */

const URI = 'spiffe://cluster.local/ns/agents/pod/{pod}';
const POD = 'claims-agent-7d9c5b6f4-x2x9q';
const stamp = '20261207T101500Z';

const verified = (san: string) => ({ headers: {}, socket: { authorized: true, getPeerCertificate: () => ({ subjectaltname: san }) } });
const podCert = (pod: string) => verified(`URI:spiffe://cluster.local/ns/agents/pod/${pod}`);

function outcome(ids: ShipIdentities, req: ReturnType<typeof verified>, stream: string): string {
  try {
    ids.authorize(req, stream);
    return 'allowed';
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return (err as HttpError).code;
  }
}

describe('ship identities with {pod}', () => {
  const ids = new ShipIdentities([{ id: 'agent-pods', san_uri: URI, streams: ['{pod}-*'] }]);

  it("takes a pod's own streams, as its sidecar names them", () => {
    expect(outcome(ids, podCert(POD), `${POD}-${stamp}`)).toBe('allowed');
    expect(outcome(ids, podCert(POD), defaultStreamId(undefined, { POD_NAME: POD }))).toBe('allowed');
  });

  it("refuses another replica's stream, a stream extending the pod's name, and one without the buffer stamp", () => {
    for (const stream of [`claims-agent-7d9c5b6f4-aaaaa-${stamp}`, `${POD}-extra-${stamp}`, POD, `${POD}-`, `${POD}-${stamp}x`, `x${POD}-${stamp}`]) {
      expect(outcome(ids, podCert(POD), stream), stream).toBe('stream_forbidden');
    }
    const err = thrown(() => ids.authorize(podCert(POD), `claims-agent-7d9c5b6f4-aaaaa-${stamp}`), HttpError);
    expect(err.message).toContain(`agent-pods (pod ${POD})`);
  });

  it('does not recognise a SAN outside the pattern: another namespace, a path, a name no pod can have', () => {
    for (const san of [
      `URI:spiffe://cluster.local/ns/billing/pod/${POD}`,
      `URI:spiffe://cluster.local/ns/agents/pod/${POD}/extra`,
      'URI:spiffe://cluster.local/ns/agents/pod/Bad_Name',
      'URI:spiffe://cluster.local/ns/agents/pod/',
      `DNS:spiffe://cluster.local/ns/agents/pod/${POD}`,
    ]) {
      expect(outcome(ids, verified(san), `${POD}-${stamp}`), san).toBe('ship_identity_required');
    }
    // An unverified socket names nobody, whatever its certificate says.
    const unverified = { headers: {}, socket: { authorized: false, getPeerCertificate: () => ({ subjectaltname: `URI:spiffe://cluster.local/ns/agents/pod/${POD}` }) } };
    expect(outcome(ids, unverified, `${POD}-${stamp}`)).toBe('ship_identity_required');
  });

  it('takes a DNS SAN pattern and exact {pod} streams too, beside plain entries', () => {
    const mixed = new ShipIdentities([
      { id: 'by-dns', san_dns: '{pod}.agents.pod.cluster.local', streams: ['{pod}', 'shared-*'] },
      { id: 'fixed', san_uri: 'spiffe://cluster.local/ns/ops/sa/backfill', streams: ['backfill-*'] },
    ]);
    const dns = verified(`DNS:${POD}.agents.pod.cluster.local`);
    expect(outcome(mixed, dns, POD)).toBe('allowed');
    expect(outcome(mixed, dns, 'shared-x')).toBe('allowed');
    expect(outcome(mixed, dns, `${POD}-${stamp}`)).toBe('stream_forbidden');
    expect(outcome(mixed, verified('URI:spiffe://cluster.local/ns/ops/sa/backfill'), 'backfill-1')).toBe('allowed');
  });

  it('refuses {pod} streams without a {pod} SAN, and a SAN with two placeholders', () => {
    const bad: [ShipIdentity, RegExp][] = [
      [{ id: 'a', san_uri: 'spiffe://x/sa/a', streams: ['{pod}-*'] }, /needs a san_uri or san_dns holding \{pod\}/],
      [{ id: 'b', token_sha256: 'a'.repeat(64), streams: ['{pod}'] }, /needs a san_uri or san_dns holding \{pod\}/],
      [{ id: 'c', san_uri: 'spiffe://x/{pod}/{pod}', streams: ['{pod}-*'] }, /at most one \{pod\}/],
    ];
    for (const [entry, message] of bad) expect(() => new ShipIdentities([entry]), entry.id).toThrow(message);
  });
});

describe('collector.ship_identities with {pod} in a config file', () => {
  const config = (streams: string) => `collector:
  listen: 127.0.0.1:7470
  auth: { admin_token_files: [/t] }
  streams: [{ match: "claims-agent-*", vkey_file: /k.vkey }]
  hmac_keys: [{ id: k1, file: /h }]
  ship_identities:
    - { id: agent-pods, san_uri: "${URI}", streams: [${streams}] }
`;

  it('loads "{pod}-*" and "{pod}"', () => {
    const c = parseConfigText(config('"{pod}-*", "{pod}"'), 'c.yaml', {}).collector!;
    expect(c.ship_identities).toEqual([{ id: 'agent-pods', san_uri: URI, streams: ['{pod}-*', '{pod}'] }]);
  });

  it('refuses other braces in a stream pattern, naming the field', () => {
    for (const s of ['"{podx}-*"', '"{POD}"', '"{pod"', '"a*b"']) {
      const err = thrown(() => parseConfigText(config(s), 'c.yaml', {}), ConfigError, s);
      expect(err.message).toContain('ship_identities');
    }
  });
});
