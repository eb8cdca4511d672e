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

/**
 * Adds `value` under `key`, or, when `o` has that member already, under the
 * next free "<key>#2", "<key>#3", … so no member is lost. `next` remembers
 * where each key's search stopped: searching from #2 every time made n
 * repeats of one key cost n² (40,000 repeated attribute keys held the
 * event loop for a minute and a half). Returns the name used.
 */
export function defineFree(o: object, key: string, value: unknown, next: Map<string, number>): string {
  let name = key;
  if (Object.hasOwn(o, name)) {
    let n = next.get(key) ?? 2;
    for (name = `${key}#${n}`; Object.hasOwn(o, name); name = `${key}#${n}`) n++;
    next.set(key, n + 1);
  }
  defineKey(o, name, value);
  return name;
}
