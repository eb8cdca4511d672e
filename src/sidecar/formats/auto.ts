/**
 * `format: auto`: each line is recognised on its own, so one file may mix
 * sealtrail events, OTLP/JSON export requests and CloudEvents (an agent
 * whose exporter was switched mid-file). A mapped format is never guessed:
 * its shape is arbitrary, so it is always named in the config.
 *
 * Recognition looks at structure only (an array `resourceSpans` or
 * `resourceLogs`; a string `specversion` and `type`); anything else is read
 * as sealtrail's own shape, which refuses it with the reason a sealtrail
 * line would get.
 */
import { cloudEventsFormat, looksLikeCloudEvent } from './cloudevents.js';
import type { DecodedEvent, LineFormat } from './format.js';
import { looksLikeOtlpJson, otlpJsonFormat } from './otlp/index.js';
import { sealtrailFormat } from './sealtrail.js';

export const autoFormat: LineFormat = {
  name: 'auto',
  decode(value: unknown): DecodedEvent[] {
    if (looksLikeOtlpJson(value)) return otlpJsonFormat.decode(value);
    if (looksLikeCloudEvent(value) || (Array.isArray(value) && value.length > 0 && value.every(looksLikeCloudEvent))) {
      return cloudEventsFormat.decode(value);
    }
    return sealtrailFormat.decode(value);
  },
};
