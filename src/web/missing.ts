/**
 * The `missing` sentinel: an option or config value equal to it counts as
 * not given. It lets code document a setting without changing its default,
 * e.g. `app.set("DRAMATIQ_BROKER_URL", missing)`.
 */

/** A value that means "not given": the option or config key is skipped. */
export const missing: unique symbol = Symbol.for("melodramatiq.web.missing");

/** The type of `missing`. */
export type Missing = typeof missing;

/** Reports whether `value` is the `missing` sentinel. */
export function isMissing(value: unknown): value is Missing {
  return value === missing;
}

/** Returns a copy of `record` without the entries whose value is `missing`. */
export function withoutMissing(record: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => !isMissing(value)));
}
