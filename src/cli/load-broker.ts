/**
 * Importing the MODULE arguments in a worker process and finding the broker
 * in the first one.
 */

import { pathToFileURL } from "node:url";

import { Broker, getBrokerIfSet } from "../broker.js";

/** The broker module loaded, but the export that the command line names (or the default lookup) gives no broker. */
export class BrokerNotFoundError extends Error {
  override readonly name = "BrokerNotFoundError";
}

/** A module's exports, as `import()` returns them. */
export type ModuleNamespace = Readonly<Record<string, unknown>>;

/** Imports the module file at the absolute `path`. */
export async function importModule(path: string): Promise<ModuleNamespace> {
  return (await import(pathToFileURL(path).href)) as ModuleNamespace;
}

/**
 * Returns the broker of a loaded module.
 *
 * With `brokerName` (`broker`, `app.broker`): the value at that path, or,
 * if it is a function, whatever Broker the function returns after it is
 * awaited, else the global broker it was expected to set.
 * Without: the export `broker`, else a default export that is a Broker, else
 * the global broker. Throws BrokerNotFoundError naming the module (`label`)
 * and what to export.
 */
export async function findBroker(namespace: ModuleNamespace, label: string, brokerName: string | undefined): Promise<Broker> {
  if (brokerName === undefined) {
    return findDefaultBroker(namespace, label);
  }

  const value = lookupExport(namespace, brokerName, label);
  if (typeof value === "function") {
    return callBrokerSetup(value, label, brokerName);
  }
  return requireBroker(value, `${label}:${brokerName}`);
}

function findDefaultBroker(namespace: ModuleNamespace, label: string): Broker {
  const named = readExport(namespace, "broker");
  if (named !== undefined) {
    return requireBroker(named, `the export 'broker' of ${label}`);
  }

  if (namespace["default"] instanceof Broker) {
    return namespace["default"];
  }

  const global = getBrokerIfSet();
  if (global !== undefined) {
    return global;
  }

  throw new BrokerNotFoundError(
    `Module ${label} provides no broker. Export it as 'broker' (export const broker = new RabbitmqBroker(...)), ` +
      `name its export on the command line (${label}:myBroker), or call setBroker(broker) in the module.`,
  );
}

async function callBrokerSetup(setup: unknown, label: string, brokerName: string): Promise<Broker> {
  const returned: unknown = await (setup as () => unknown)();
  if (returned instanceof Broker) {
    return returned;
  }

  const global = getBrokerIfSet();
  if (global === undefined) {
    throw new BrokerNotFoundError(
      `The function ${label}:${brokerName} returned ${describe(returned)} and set no global broker; ` +
        "return the broker from it or call setBroker(broker) in it.",
    );
  }
  return global;
}

/**
 * Returns the value at the dotted `path` of the module's exports. The first
 * name is also looked up on the default export, where a CommonJS module's
 * `module.exports` ends up.
 */
function lookupExport(namespace: ModuleNamespace, path: string, label: string): unknown {
  const [first = "", ...rest] = path.split(".");
  let value = readExport(namespace, first);
  if (value === undefined) {
    throw new BrokerNotFoundError(`Module ${label} has no export ${JSON.stringify(first)}; export the broker under that name or name another export after ':'.`);
  }

  let walked = first;
  for (const name of rest) {
    const next = isObjectLike(value) ? (value as Record<string, unknown>)[name] : undefined;
    if (next === undefined) {
      throw new BrokerNotFoundError(`${label}:${walked} has no property ${JSON.stringify(name)} (it is ${describe(value)}).`);
    }
    value = next;
    walked = `${walked}.${name}`;
  }

  return value;
}

function readExport(namespace: ModuleNamespace, name: string): unknown {
  if (namespace[name] !== undefined) {
    return namespace[name];
  }

  const fallback = namespace["default"];
  return isObjectLike(fallback) ? (fallback as Record<string, unknown>)[name] : undefined;
}

function requireBroker(value: unknown, where: string): Broker {
  if (value instanceof Broker) {
    return value;
  }

  if (looksLikeBroker(value)) {
    throw new BrokerNotFoundError(
      `${where} is a broker from another copy of melodramatiq than this CLI's. ` +
        "Run the melodramatiq command installed in the app (npx melodramatiq) so both use the same copy.",
    );
  }
  throw new BrokerNotFoundError(`${where} is ${describe(value)}, not a Broker or a function that sets one up.`);
}

function looksLikeBroker(value: unknown): boolean {
  if (!isObjectLike(value)) {
    return false;
  }
  const candidate = value as Record<string, unknown>;
  return ["consume", "connect", "close", "declareActor", "emitAfter"].every((method) => typeof candidate[method] === "function");
}

function isObjectLike(value: unknown): value is object {
  return (typeof value === "object" && value !== null) || typeof value === "function";
}

function describe(value: unknown): string {
  if (value === null) {
    return "null";
  }

  switch (typeof value) {
    case "object":
      return `an object of class ${value.constructor?.name ?? "Object"}`;
    case "function":
      return `the function ${value.name === "" ? "(anonymous)" : value.name}`;
    case "string":
      return `the string ${JSON.stringify(value)}`;
    case "symbol":
      return value.toString();
    case "number":
    case "bigint":
    case "boolean":
      return `the ${typeof value} ${String(value)}`;
    default:
      return "undefined";
  }
}
