import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import type { CollectorStreamKey } from './options.js';

interface Entry {
  match: string;
  prefix: string | undefined;
  verifier: NoteVerifier;
}

/**
 * Configured checkpoint keys by stream. Keys are parsed once at start-up so
 * a bad vkey fails the collector's start, not a sidecar's upload.
 */
export class StreamKeys {
  private readonly entries: Entry[];

  constructor(keys: readonly CollectorStreamKey[]) {
    this.entries = keys.map((k, i) => {
      const star = k.match.indexOf('*');
      if (k.match.length === 0 || (star !== -1 && star !== k.match.length - 1)) {
        throw new TypeError(`streams[${i}].match: "*" is only allowed as the last character`);
      }
      return {
        match: k.match,
        prefix: star === -1 ? undefined : k.match.slice(0, -1),
        verifier: parseVerifierKey(k.vkey),
      };
    });
  }

  /** The verifier of the first entry matching `stream`, if any. */
  resolve(stream: string): NoteVerifier | undefined {
    for (const e of this.entries) {
      if (e.prefix === undefined ? e.match === stream : stream.startsWith(e.prefix)) return e.verifier;
    }
    return undefined;
  }
}
