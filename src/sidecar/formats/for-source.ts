/**
 * The LineFormat a source's `format` (and `mapping`) names. A mapping file is
 * read once, at start (source-format.ts): a broken mapping stops the sidecar with its
 * file:line:col instead of quarantining every line.
 */
import type { SourceFormatConfig } from '../../config/types.js';
import { autoFormat } from './auto.js';
import type { LineFormat } from './format.js';
import { otlpJsonFormat } from './otlp/index.js';
import { formatWithoutOtlp } from './source-format.js';

/** `baseDir`: where a relative mapping path is resolved (the working directory, like every path in the config). */
export function formatFor(cfg: SourceFormatConfig, baseDir: string): LineFormat {
  return formatWithoutOtlp(cfg, baseDir) ?? (cfg.format === 'auto' ? autoFormat : otlpJsonFormat);
}
