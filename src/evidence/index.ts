export * from './format.js';
export { verifyBundle, formatFailure, type BundleFailure, type BundleResult, type BundleSummary, type VerifyBundleOptions } from './verify.js';
export { exportBundle, ExportError, type BundleKey, type ExportBundleOptions, type ExportSummary } from './build.js';
