/**
 * The LineFormat a source's `format` (and `mapping`) names. A mapping file is
 * read once, here, at start: a broken mapping stops the sidecar with its
 * file:line:col instead of quarantining every line.
 */
import type { SourceFormatConfig } from '../../config/types.js';
import { autoFormat } from './auto.js';
import { cloudEventsFormat } from './cloudevents.js';
import type { LineFormat } from './format.js';
import { loadMapping } from './mapped/index.js';
import { otlpJsonFormat } from './otlp/index.js';
import { sealtrailFormat } from './sealtrail.js';

/** `baseDir`: where a relative mapping path is resolved (the working directory, like every path in the config). */
export function formatFor(cfg: SourceFormatConfig, baseDir: string): LineFormat {
  switch (cfg.format) {
    case 'sealtrail':
      return sealtrailFormat;
    case 'otlp-json':
      return otlpJsonFormat;
    case 'cloudevents':
      return cloudEventsFormat;
    case 'auto':
      return autoFormat;
    case 'mapped':
      return loadMapping(cfg.mapping, baseDir);
  }
}
