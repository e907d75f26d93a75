/**
 * Option names: camelCase in the TypeScript API, snake_case on the wire.
 * The translation is mechanical, so options unknown to this library (for
 * example ones read by a custom Python middleware) also round-trip.
 */

/**
 * Wire names computed so far. Middleware converts the same few option
 * names for every message, so the cache saves a regex replace each time.
 * It stops growing at WIRE_NAME_CACHE_LIMIT entries, because callers may
 * send any number of distinct option names.
 */
const wireNames = new Map<string, string>();
const WIRE_NAME_CACHE_LIMIT = 1000;

/** Converts an API option name to its wire name: `maxRetries` → `max_retries`. */
export function toWireName(name: string): string {
  let wire = wireNames.get(name);
  if (wire === undefined) {
    wire = name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    if (wireNames.size < WIRE_NAME_CACHE_LIMIT) {
      wireNames.set(name, wire);
    }
  }
  return wire;
}

/** Converts a wire option name to its API name: `max_retries` → `maxRetries`. */
export function toApiName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Returns a copy of `options` with every key converted to its wire name and undefined values dropped. */
export function toWireOptions(options: Record<string, unknown>): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined) {
      wire[toWireName(name)] = value;
    }
  }

  return wire;
}
