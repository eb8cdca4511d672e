/** TLS for every listener and the ship client: one config shape, files followed on disk. */
export { ReloadingClientTls, type ClientTlsOptions } from './client-tls.js';
export { TlsError } from './errors.js';
export { FollowedFiles, type Refresh } from './followed-files.js';
export { handshakeHint, RefusalLog, type WarnLogger } from './handshake-log.js';
export { createListener, type ListenerOptions, type RequestHandler } from './listener.js';
export type { CertSummary } from './material.js';
export { ReloadingServerTls, type ServerTlsOptions, type TlsLogger } from './server-tls.js';
export { TLS_MIN_VERSION, type ClientTlsConfig, type ServerTlsConfig } from './types.js';
