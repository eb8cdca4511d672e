export { loadConfigFile, parseConfigText, defaultSidecarConfig, defaultCollectorConfig, MAX_CONFIG_BYTES } from './load.js';
export { parseDuration, parseSize, splitHostPort } from './units.js';
export type {
  SealtrailConfig,
  SidecarConfig,
  CollectorConfig,
  SourceConfig,
  FileSourceConfig,
  StreamTrustConfig,
  SidecarConfigInput,
  CollectorConfigInput,
  DurationInput,
  SizeInput,
  StartAt,
  HttpLimitsConfig,
  HttpLimitsInput,
} from './types.js';
