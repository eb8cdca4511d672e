/**
 * The sidecar's way to a source's LineFormat: as formatFor (for-source.ts),
 * but the OTLP/JSON decoder (and protobufjs with it) is loaded only for a
 * source whose format can meet OTLP lines (`otlp-json`, `auto`). A sidecar
 * that reads `format: sealtrail` files does not keep it in memory.
 */
import type { SourceFormatConfig } from '../../config/types.js';
import { cloudEventsFormat } from './cloudevents.js';
import type { LineFormat } from './format.js';
import { loadMapping } from './mapped/index.js';
import { sealtrailFormat } from './sealtrail.js';

/** `baseDir`: where a relative mapping path is resolved (the working directory, like every path in the config). */
export async function sourceFormat(cfg: SourceFormatConfig, baseDir: string): Promise<LineFormat> {
  return formatWithoutOtlp(cfg, baseDir) ?? (await import('./for-source.js')).formatFor(cfg, baseDir);
}

/**
 * The formats that need no OTLP decoder; undefined for `otlp-json` and
 * `auto`, which formatFor answers. The one place a format name becomes a
 * LineFormat, for both.
 */
export function formatWithoutOtlp(cfg: SourceFormatConfig, baseDir: string): LineFormat | undefined {
  switch (cfg.format) {
    case 'sealtrail':
      return sealtrailFormat;
    case 'cloudevents':
      return cloudEventsFormat;
    case 'mapped':
      return loadMapping(cfg.mapping, baseDir);
    default:
      return undefined;
  }
}
