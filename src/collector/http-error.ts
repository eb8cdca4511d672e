import { SealtrailError } from '../core/errors.js';

/** A request refused with a given HTTP status; rendered as {"error":{"code","message"}}. */
export class ApiError extends SealtrailError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Echo a client-chosen name (a query parameter) only if it is short and plain. */
export function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(name) ? `"${name}"` : '(unprintable name)';
}
