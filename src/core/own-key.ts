/**
 * Sets an own data property on a plain object built from input. Plain
 * assignment of "__proto__" (a legal JSON key) would set the prototype
 * instead and silently lose the member; every other key assigns as an own
 * property (inherited members of Object.prototype are writable data
 * properties, so assignment shadows them). Assignment is the fast path:
 * Object.defineProperty on every member was a measurable share of ingest.
 */
export function defineKey(o: object, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  else (o as Record<string, unknown>)[key] = value;
}
