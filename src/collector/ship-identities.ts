/**
 * Who may post which streams (collector.ship_identities).
 *
 * Security contract: a stream key proves that a batch was signed by a
 * trusted key, not which pod sent it; one key is often shared by many pods.
 * When identities are configured, POST /v1/batches is accepted only from an
 * authenticated sender, and only for the streams its identity lists:
 * - the sender is identified by a ship token (Authorization: Bearer, hashed
 *   and compared in constant time against every token_sha256, no early
 *   exit) and/or by its client certificate, when the connection verified one
 *   against collector.tls.client_ca_file (its SAN URIs, e.g. a SPIFFE ID,
 *   and SAN DNS names are matched exactly);
 * - per-pod identities: a `{pod}` in san_uri or san_dns captures one
 *   pod-name-shaped value of the certificate's SAN (cert-manager's
 *   csi-driver issues each pod its own, e.g.
 *   spiffe://cluster.local/ns/agents/pod/<pod name>); in that entry's
 *   streams `{pod}` stands for the captured value, and a trailing `*`
 *   after it matches only a sidecar's buffer stamp (YYYYMMDDTHHMMSSZ), so
 *   `{pod}-*` is exactly that pod's own streams — never those of a pod
 *   whose name merely begins with it;
 * - no identity: 401 ship_identity_required; a token that matches none:
 *   403 ship_identity_unknown; a stream none of the sender's identities
 *   lists: 403 stream_forbidden, before the batch is verified or stored.
 * With no identities configured, any client that reaches the port may post
 * any stream whose key it holds (the behaviour before this existed); the
 * collector logs that at start.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { HttpError } from '../core/errors.js';
import { MAX_TOKEN_CHARS, MIN_TOKEN_CHARS } from './auth.js';
import type { ShipIdentity } from './options.js';

export interface ShipRequest {
  headers: { authorization?: string | string[] | undefined };
  socket: unknown;
}

interface Entry {
  id: string;
  token?: Buffer;
  sanUri?: string;
  sanDns?: string;
  /** per-pod identity: the SAN with `{pod}` as a capture (anchored) */
  sanPattern?: { kind: 'uri' | 'dns'; re: RegExp };
  exact: Set<string>;
  prefixes: string[];
  /** streams patterns holding `{pod}`, expanded per request */
  podStreams: string[];
}

/** Who the sender is: an entry, and for a per-pod entry the pod its certificate names. */
interface Match {
  entry: Entry;
  pod?: string;
}

export const POD_PLACEHOLDER = '{pod}';
/** A Kubernetes object name (DNS-1123 subdomain): what a pod's name can be. */
const POD_NAME = '([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)';
/** The stamp a sidecar appends to its stream id (src/sidecar/stream-id.ts). */
const BUFFER_STAMP = /^\d{8}T\d{6}Z$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function podPattern(san: string, at: string): RegExp {
  const parts = san.split(POD_PLACEHOLDER);
  if (parts.length !== 2) throw new TypeError(`${at}: at most one ${POD_PLACEHOLDER} in a SAN`);
  return new RegExp(`^${escapeRegExp(parts[0]!)}${POD_NAME}${escapeRegExp(parts[1]!)}$`);
}

/** Whether a `{pod}` stream pattern, expanded for `pod`, covers `stream` (see the contract). */
function podStreamMatches(pattern: string, pod: string, stream: string): boolean {
  const expanded = pattern.split(POD_PLACEHOLDER).join(pod);
  if (!expanded.endsWith('*')) return stream === expanded;
  const head = expanded.slice(0, -1);
  return stream.startsWith(head) && BUFFER_STAMP.test(stream.slice(head.length));
}

/** SAN entries as Node prints them: `URI:spiffe://a, DNS:b`; split only before a known tag. */
function sanEntries(text: string | undefined): { uris: string[]; dns: string[] } {
  const uris: string[] = [];
  const dns: string[] = [];
  for (const part of (text ?? '').split(/, (?=(?:DNS|URI|IP Address|email|othername|DirName|Registered ID):)/)) {
    if (part.startsWith('URI:')) uris.push(part.slice(4).replace(/^"(.*)"$/, '$1'));
    else if (part.startsWith('DNS:')) dns.push(part.slice(4).replace(/^"(.*)"$/, '$1'));
  }
  return { uris, dns };
}

export class ShipIdentities {
  private readonly entries: Entry[];

  constructor(list: readonly ShipIdentity[]) {
    const ids = new Set<string>();
    this.entries = list.map((s, i) => {
      const at = `ship_identities[${i}]`;
      const kinds = [s.token_sha256, s.san_uri, s.san_dns].filter((v) => v !== undefined).length;
      if (kinds !== 1) throw new TypeError(`${at}: needs exactly one of token_sha256, san_uri, san_dns`);
      if (ids.has(s.id)) throw new TypeError(`${at}.id: duplicate id "${s.id}"`);
      ids.add(s.id);
      if (s.token_sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(s.token_sha256)) {
        throw new TypeError(`${at}.token_sha256 must be 64 hex digits (sealtrail token-hash)`);
      }
      if (s.streams.length === 0) throw new TypeError(`${at}.streams must list at least one stream id or prefix`);
      const san = s.san_uri ?? s.san_dns;
      const perPod = san?.includes(POD_PLACEHOLDER) === true;
      const podStreams = s.streams.filter((p) => p.includes(POD_PLACEHOLDER));
      if (podStreams.length > 0 && !perPod) {
        throw new TypeError(`${at}.streams: ${POD_PLACEHOLDER} needs a san_uri or san_dns holding ${POD_PLACEHOLDER} to take the pod from`);
      }
      const plain = s.streams.filter((p) => !p.includes(POD_PLACEHOLDER));
      const e: Entry = {
        id: s.id,
        exact: new Set(plain.filter((p) => !p.endsWith('*'))),
        prefixes: plain.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1)),
        podStreams,
      };
      if (s.token_sha256 !== undefined) e.token = Buffer.from(s.token_sha256, 'hex');
      if (perPod) e.sanPattern = { kind: s.san_uri !== undefined ? 'uri' : 'dns', re: podPattern(san!, `${at}.${s.san_uri !== undefined ? 'san_uri' : 'san_dns'}`) };
      else if (s.san_uri !== undefined) e.sanUri = s.san_uri;
      else if (s.san_dns !== undefined) e.sanDns = s.san_dns;
      return e;
    });
  }

  get size(): number {
    return this.entries.length;
  }

  /** The identities of the sender; throws 401/403 when it has none. */
  private identify(req: ShipRequest): Match[] {
    const found: Match[] = [];
    const header = req.headers.authorization;
    let tokenGiven = false;
    if (typeof header === 'string') {
      const m = /^Bearer +([^\s]+) *$/i.exec(header);
      if (!m) throw new HttpError(401, 'unauthorized', 'Authorization must be "Bearer <ship token>"');
      tokenGiven = true;
      const token = m[1]!;
      if (token.length >= MIN_TOKEN_CHARS && token.length <= MAX_TOKEN_CHARS) {
        const digest = createHash('sha256').update(token, 'utf8').digest();
        // No early exit: every token entry is compared.
        for (const e of this.entries) if (e.token && timingSafeEqual(digest, e.token)) found.push({ entry: e });
      }
    }
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
      const san = sanEntries(socket.getPeerCertificate().subjectaltname);
      for (const e of this.entries) {
        if ((e.sanUri !== undefined && san.uris.includes(e.sanUri)) || (e.sanDns !== undefined && san.dns.includes(e.sanDns))) found.push({ entry: e });
        if (e.sanPattern) {
          for (const value of e.sanPattern.kind === 'uri' ? san.uris : san.dns) {
            const pod = e.sanPattern.re.exec(value)?.[1];
            if (pod !== undefined) found.push({ entry: e, pod });
          }
        }
      }
    }
    if (found.length > 0) return found;
    if (tokenGiven) throw new HttpError(403, 'ship_identity_unknown', 'ship token not accepted: its SHA-256 is not a token_sha256 of collector.ship_identities');
    throw new HttpError(
      401,
      'ship_identity_required',
      'POST /v1/batches needs a ship token (Authorization: Bearer) or a client certificate whose SAN is listed in collector.ship_identities',
    );
  }

  /** Throws unless the sender may post `stream` (see the contract). */
  authorize(req: ShipRequest, stream: string): void {
    const who = this.identify(req);
    for (const { entry: e, pod } of who) {
      if (e.exact.has(stream) || e.prefixes.some((p) => stream.startsWith(p))) return;
      if (pod !== undefined && e.podStreams.some((p) => podStreamMatches(p, pod, stream))) return;
    }
    const names = who.map(({ entry, pod }) => (pod === undefined ? entry.id : `${entry.id} (pod ${pod})`));
    throw new HttpError(
      403,
      'stream_forbidden',
      `stream ${stream}: sender identity ${names.join(', ')} may not post this stream (collector.ship_identities[].streams)`,
    );
  }
}
