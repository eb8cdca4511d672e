import type { HttpCode } from '../core/error-codes.js';

/** The body of every error answer: {"error":{"code","message"}}; the code is an HttpError's, or one of Fastify's or Node's refusals renamed. */
export function errorBody(code: HttpCode, message: string): { error: { code: HttpCode; message: string } } {
  return { error: { code, message } };
}

/** Echo a client-chosen name (a query parameter) only if it is short and plain. */
export function safeName(name: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(name) ? `"${name}"` : '(unprintable name)';
}
