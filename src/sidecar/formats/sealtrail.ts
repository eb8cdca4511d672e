/**
 * `format: sealtrail`: one JSON object per line in sealtrail's own input
 * shape (docs/events.md); the object is the event. What it may hold is
 * judged by normaliseEvent (core/record.ts), after redaction.
 */
import { InputError } from '../../core/errors.js';
import type { DecodedEvent, LineFormat } from './format.js';

export const sealtrailFormat: LineFormat = {
  name: 'sealtrail',
  decode(value: unknown): DecodedEvent[] {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InputError('record_not_object', 'a line must hold one JSON object');
    }
    return [{ event: value as Record<string, unknown>, path: '' }];
  },
};
