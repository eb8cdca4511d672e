import { createHmac, type KeyObject } from 'node:crypto';

/**
 * How the buffer remembers an event_id: the first 16 bytes of its HMAC
 * under the sidecar's chain key, so the buffer keeps no client text and an
 * id cannot be looked up without the key.
 */
export function eventKey(hmacKey: Buffer | KeyObject, eventId: string): Buffer {
  return createHmac('sha256', hmacKey).update('sealtrail event_id\0').update(eventId).digest().subarray(0, 16);
}
