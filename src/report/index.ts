export { applyFullVerification, buildReport, HEARTBEAT_EVENT, REPORT_LIMITS } from './build.js';
export { esc, renderChart, renderHtml, REPORT_HTML_CSP } from './html.js';
export { readReportParams, ReportParamError, type ReportFormat, type ReportParams } from './params.js';
export type * from './types.js';
