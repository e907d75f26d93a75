/**
 * Types of broker options as config values, and their conversion. Config
 * often comes from environment variables, so every value may arrive as a
 * string and is converted to the option's type here.
 */

import { ConfigurationError } from "../errors.js";
import { redactUrl } from "../logger.js";

/**
 * The type of one broker option in config:
 * - `string`: any string;
 * - `urls`: a URL string (the engine splits fail-over lists at `;`) or an array of URL strings;
 * - `boolean`: a boolean, or one of the strings `true`, `false`, `1`, `0` (any case);
 * - `integer`: a whole number, 0 or more, or its decimal string;
 * - `number`: a finite number, 0 or more, or its decimal string;
 * - `object`: an object, or a string holding a JSON object;
 * - `instance`: an object such as a client, which no string can hold.
 */
export type OptionType = "string" | "urls" | "boolean" | "integer" | "number" | "object" | "instance";

/** Option types of a broker class, by camelCase option name (`confirmDelivery`). */
export type OptionTypes = Readonly<Record<string, OptionType>>;

const expectations: Record<OptionType, string> = {
  string: "a string",
  urls: "a URL string (several separated by ';') or an array of URL strings",
  boolean: 'a boolean or one of the strings "true", "false", "1", "0"',
  integer: "a whole number, 0 or more",
  number: "a number, 0 or more",
  object: "an object or a string holding a JSON object",
  instance: "an object, such as a client instance; it cannot come from a string or an environment variable",
};

/**
 * Converts the config value of `key` to `type`. Throws a ConfigurationError
 * naming the key, the value and the expected type when it does not convert.
 */
export function convertOptionValue(key: string, value: unknown, type: OptionType): unknown {
  const converted = convert(value, type);
  if (converted === invalid) {
    throw new ConfigurationError(`Invalid value ${describeValue(value, type)} for config key ${key}: expected ${expectations[type]}.`);
  }
  return converted;
}

const invalid = Symbol("invalid");

function convert(value: unknown, type: OptionType): unknown {
  switch (type) {
    case "string":
      return typeof value === "string" ? value : invalid;

    case "urls":
      return toUrls(value);

    case "boolean":
      return toBoolean(value);

    case "integer": {
      const number = toNumber(value, /^\d+$/);
      return number !== invalid && Number.isSafeInteger(number) ? number : invalid;
    }

    case "number":
      return toNumber(value, /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/);

    case "object":
      return toObject(value);

    case "instance":
      return (typeof value === "object" && value !== null) || typeof value === "function" ? value : invalid;
  }
}

function toUrls(value: unknown): unknown {
  if (typeof value === "string" && value.trim() !== "") {
    return value;
  }
  if (Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === "string" && item.trim() !== "")) {
    return [...(value as string[])];
  }
  return invalid;
}

function toBoolean(value: unknown): boolean | typeof invalid {
  if (typeof value === "boolean") {
    return value;
  }
  if (typeof value !== "string") {
    return invalid;
  }

  const text = value.trim().toLowerCase();
  if (text === "true" || text === "1") {
    return true;
  }
  if (text === "false" || text === "0") {
    return false;
  }
  return invalid;
}

function toNumber(value: unknown, pattern: RegExp): number | typeof invalid {
  let number: number;
  if (typeof value === "number") {
    number = value;
  } else if (typeof value === "string" && pattern.test(value.trim())) {
    number = Number(value.trim());
  } else {
    return invalid;
  }

  return Number.isFinite(number) && number >= 0 ? number : invalid;
}

function toObject(value: unknown): unknown {
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return invalid;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value : invalid;
}

/**
 * Describes a config value for an error message. URLs lose their password,
 * and objects are not shown because socket options may hold TLS secrets.
 */
function describeValue(value: unknown, type: OptionType): string {
  if (type === "object" || type === "instance") {
    return typeof value === "string" ? "(a string that is not a JSON object; not shown, it may hold secrets)" : `of type ${typeName(value)}`;
  }
  if (typeof value === "string") {
    // Any string may be a URL put under the wrong key, so passwords are hidden everywhere.
    return JSON.stringify(redactUrl(value));
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  return `of type ${typeName(value)}`;
}

function typeName(value: unknown): string {
  if (value === null) {
    return "null";
  }
  return Array.isArray(value) ? "array" : typeof value;
}
