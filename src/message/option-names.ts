/**
 * Option names: camelCase in the TypeScript API, snake_case on the wire.
 * The translation is mechanical, so options unknown to this library (for
 * example ones read by a custom Python middleware) also round-trip.
 */

/** Converts an API option name to its wire name: `maxRetries` → `max_retries`. */
export function toWireName(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
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
