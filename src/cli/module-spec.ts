/**
 * The `MODULE[:BROKER]` argument: a module specifier, optionally followed by
 * the export that contains the broker or a function that sets it up.
 */

import { UsageError } from "./usage-error.js";

/** A parsed `MODULE[:BROKER]` argument. */
export interface ModuleSpec {
  /** File path or package specifier, as given. */
  readonly specifier: string;
  /** Export name or dotted path after the colon, e.g. `broker` or `app.broker`. */
  readonly brokerName?: string;
}

const exportPathPattern = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

/**
 * Splits `MODULE[:BROKER]` at its last colon. The colon of a Windows drive
 * (`C:\app.js`) or of a `file:` URL is part of the module. Throws a
 * UsageError naming the value when the part after the colon is not an
 * export name or dotted path.
 */
export function parseModuleSpec(value: string): ModuleSpec {
  const prefix = /^(?:[A-Za-z]:[\\/]|file:)/.exec(value)?.[0] ?? "";
  const colon = value.lastIndexOf(":");
  if (colon < prefix.length) {
    return { specifier: value };
  }

  const specifier = value.slice(0, colon);
  const brokerName = value.slice(colon + 1);
  if (specifier === "") {
    throw new UsageError(`invalid module ${JSON.stringify(value)}: the module before ':' is missing`);
  }
  if (!exportPathPattern.test(brokerName)) {
    throw new UsageError(
      `invalid broker name ${JSON.stringify(brokerName)} in ${JSON.stringify(value)}: ` +
        "expected an export name or a dotted path such as 'broker' or 'app.broker'",
    );
  }

  return { specifier, brokerName };
}
