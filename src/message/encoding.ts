/**
 * JSON encoding and decoding that match CPython's `json` module byte for byte.
 *
 * Python Dramatiq writes messages with `json.dumps(value, separators=(",", ":"))`,
 * which differs from `JSON.stringify`: non-ASCII text is escaped as `\uXXXX`, floats
 * use Python's `repr` (`1.0`, `1e+16`), NaN and the infinities are bare tokens, and
 * integers have unlimited precision. Decoding accepts what `json.loads` accepts,
 * including the NaN and Infinity tokens, and keeps large integers exact as `bigint`.
 *
 * Known limits of the JavaScript value model:
 * - An integral float such as `1.0` decodes to the number `1` and re-encodes as the
 *   integer `1`. Wrap a number in {@link PyFloat} when Python must see a float.
 * - Every number that is a mathematical integer (including all numbers of magnitude
 *   2^53 or more) encodes as a Python int.
 * - Decoded objects are plain JavaScript objects, so keys that are array indices
 *   ("0", "1", ...) come first in ascending order, whatever their order in the text.
 */

/**
 * Nesting depth limit for arrays and objects, shared by the encoder and the
 * hand-written parser. CPython 3.11's C encoder and decoder raise RecursionError a
 * little before 1000 levels (the default recursion limit), so deeper values cannot
 * cross the wire to Python anyway. The limit also keeps both recursive walks well
 * inside Node's default stack, so deep input gets a clear error, not a stack overflow.
 */
export const MAX_NESTING_DEPTH = 1000;

/**
 * Number of decimal digits CPython 3.11 allows when it converts between int and str
 * (`sys.int_info.default_max_str_digits`). Python raises ValueError past it in both
 * `json.dumps` and `json.loads`, and the limit also keeps BigInt parsing, whose cost
 * grows quadratically, bounded.
 */
const PYTHON_INT_MAX_DIGITS = 4300;
const PYTHON_INT_LIMIT = 10n ** BigInt(PYTHON_INT_MAX_DIGITS);

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/**
 * Number that the encoder writes as a Python float (`1.0`, `1e+16`), for values whose
 * float-ness must survive. A plain integral number would reach Python as an int.
 */
export class PyFloat {
  constructor(readonly value: number) {
    if (typeof value !== "number") {
      throw new TypeError(`PyFloat expects a number, got ${typeof value}`);
    }
  }
}

/** Wraps `value` so that the encoder writes it as a Python float. */
export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/** Error thrown by {@link encodeJson}. `path` locates the offending value, like `args[0].when`. */
export class EncodeError extends Error {
  override readonly name = "EncodeError";

  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** Error thrown by {@link decodeJson} on invalid input. `position` is a UTF-16 code unit index. */
export class JsonSyntaxError extends SyntaxError {
  override readonly name = "JsonSyntaxError";

  constructor(
    detail: string,
    readonly position: number,
  ) {
    super(`Invalid JSON at position ${position}: ${detail}`);
  }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/**
 * Encodes `value` like Python `json.dumps(value, separators=(",", ":"))` with the
 * default `ensure_ascii=True`, so the result is pure ASCII.
 *
 * Accepted values: strings, numbers, bigints, booleans, null, {@link PyFloat}, arrays,
 * plain objects (prototype `Object.prototype` or null) and Maps whose keys are
 * strings, numbers, bigints, booleans, null or PyFloats. Anything else throws an
 * {@link EncodeError}, because Python would reject it and `JSON.stringify` would
 * silently change or drop it. `toJSON` methods are never called. Object members
 * with symbol keys or non-enumerable properties are skipped, as `JSON.stringify`
 * skips them.
 */
export function encodeJson(value: unknown): string {
  try {
    return encodeValue(value, { ancestors: [] });
  } catch (error) {
    if (error instanceof PendingEncodeError) {
      const path = formatPath(error.segments);
      throw new EncodeError(error.describe(path === "" ? "the top level" : path), path);
    }
    throw error;
  }
}

interface EncoderState {
  /** Containers currently being encoded, outermost first, for cycle detection. */
  readonly ancestors: object[];
}

type PathSegment = string | number;

/**
 * Failure raised deep inside the encoder. Each enclosing container prepends its
 * key or index while the error unwinds, so the success path pays nothing for paths.
 */
class PendingEncodeError extends Error {
  readonly segments: PathSegment[] = [];

  constructor(readonly describe: (where: string) => string) {
    super("encoding failed");
  }
}

function encodeValue(value: unknown, state: EncoderState): string {
  switch (typeof value) {
    case "string":
      return quoteString(value);
    case "number":
      return formatNumber(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return formatBigInt(value);
    case "object":
      break;
    default:
      throw unsupportedValue(value);
  }

  // Containers are dispatched here rather than in a helper, because every frame
  // per nesting level counts against the stack.
  if (value === null) {
    return "null";
  }

  if (Array.isArray(value)) {
    return encodeArray(value as unknown[], state);
  }

  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) {
    return encodePlainObject(value as Record<string, unknown>, state);
  }

  if (value instanceof PyFloat) {
    return formatFloat(value.value);
  }

  if (value instanceof Map) {
    return encodeMap(value, state);
  }

  throw unsupportedValue(value);
}

function encodeArray(array: readonly unknown[], state: EncoderState): string {
  enterContainer(array, state);

  let output = "[";
  let index = 0;
  try {
    for (; index < array.length; index++) {
      if (index > 0) {
        output += ",";
      }

      // A hole reads as undefined. Both are errors because Python has neither.
      output += encodeValue(array[index], state);
    }
  } catch (error) {
    throw addPathSegment(error, index);
  }

  leaveContainer(state);
  return output + "]";
}

function encodePlainObject(object: Record<string, unknown>, state: EncoderState): string {
  enterContainer(object, state);

  let output = "{";
  let key: string | undefined;
  try {
    let first = true;
    for (key of Object.keys(object)) {
      if (!first) {
        output += ",";
      }
      first = false;

      output += quoteString(key) + ":" + encodeValue(object[key], state);
    }
  } catch (error) {
    throw key === undefined ? error : addPathSegment(error, key);
  }

  leaveContainer(state);
  return output + "}";
}

function encodeMap(map: ReadonlyMap<unknown, unknown>, state: EncoderState): string {
  enterContainer(map, state);

  let output = "{";
  // Stays undefined while a key converts, so a key error points at the Map itself.
  let key: string | undefined;
  try {
    let first = true;
    for (const [rawKey, value] of map) {
      key = undefined;
      key = convertMapKey(rawKey);

      if (!first) {
        output += ",";
      }
      first = false;

      output += quoteString(key) + ":" + encodeValue(value, state);
    }
  } catch (error) {
    throw key === undefined ? error : addPathSegment(error, key);
  }

  leaveContainer(state);
  return output + "}";
}

/** Converts a Map key to the string Python would write for the same dict key. */
function convertMapKey(key: unknown): string {
  if (typeof key === "string") {
    return key;
  }

  if (typeof key === "number") {
    return formatNumber(key);
  }

  if (typeof key === "bigint") {
    return formatBigInt(key);
  }

  if (typeof key === "boolean") {
    return key ? "true" : "false";
  }

  if (key === null) {
    return "null";
  }

  if (key instanceof PyFloat) {
    return formatFloat(key.value);
  }

  const type = describeType(key);
  return failEncoding(
    (where) =>
      `keys must be str, int, float, bool or None, not ${type} (at ${where}). ` +
      "Use a string, number, bigint, boolean, null or PyFloat as the Map key.",
  );
}

function enterContainer(container: object, state: EncoderState): void {
  // A linear search suits the shallow values that messages carry, and the depth
  // limit bounds the worst case.
  if (state.ancestors.includes(container)) {
    failEncoding(
      (where) =>
        `Circular reference detected (at ${where}): the value contains itself, ` +
        "so it cannot be written as JSON. Break the cycle before encoding.",
    );
  }

  if (state.ancestors.length >= MAX_NESTING_DEPTH) {
    failEncoding(
      (where) =>
        `Value is nested deeper than ${MAX_NESTING_DEPTH} levels (at ${where}). ` +
        "Python cannot decode such deep nesting either, so flatten the value.",
    );
  }

  state.ancestors.push(container);
}

function leaveContainer(state: EncoderState): void {
  state.ancestors.pop();
}

function failEncoding(describe: (where: string) => string): never {
  throw new PendingEncodeError(describe);
}

function addPathSegment(error: unknown, segment: PathSegment): unknown {
  if (error instanceof PendingEncodeError) {
    error.segments.unshift(segment);
  }
  return error;
}

function unsupportedValue(value: unknown): PendingEncodeError {
  const type = describeType(value);
  const hint = conversionHint(value);
  return new PendingEncodeError(
    (where) => `Object of type ${type} is not JSON serializable (at ${where}). ${hint}`,
  );
}

function conversionHint(value: unknown): string {
  if (value === undefined) {
    return "Python has no undefined, so use null or leave the member or element out.";
  }

  if (value instanceof Date) {
    return "Convert it to a string with toISOString() or to a number with getTime() first.";
  }

  if (value instanceof Set) {
    return "Convert it to an array first.";
  }

  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return "Convert the bytes to a string (for example base64) or an array of numbers first.";
  }

  return "Convert it to a string, number, array or plain object first.";
}

/** Names the type of an unsupported value the way a JavaScript programmer calls it. */
function describeType(value: unknown): string {
  if (value === null) {
    return "null";
  }

  if (typeof value !== "object") {
    return typeof value;
  }

  if (Array.isArray(value)) {
    return "Array";
  }

  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype) {
    return "Object";
  }

  if (prototype === null) {
    return "object with a null prototype";
  }

  // Object.create(somePrototype) inherits Object as its constructor.
  const constructor: unknown = (prototype as { constructor?: unknown }).constructor;
  if (typeof constructor !== "function" || constructor === Object) {
    return "object with a custom prototype";
  }

  return constructor.name === "" ? "instance of an anonymous class" : constructor.name;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Formats path segments as JavaScript accessors: `args[0].when`, `options["a-b"]`. */
function formatPath(segments: readonly PathSegment[]): string {
  let path = "";
  for (const segment of segments) {
    if (typeof segment === "number") {
      path += `[${segment}]`;
    } else if (IDENTIFIER.test(segment)) {
      path += path === "" ? segment : `.${segment}`;
    } else {
      path += `[${JSON.stringify(segment)}]`;
    }
  }
  return path;
}

// ---------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex -- control characters are among those to escape
const ANY_ESCAPE_NEEDED = /["\\\u0000-\u001f\u007f-\uffff]/;
const NON_ASCII_OR_DEL = /[\u007f-\uffff]/;
const NON_ASCII_OR_DEL_GLOBAL = /[\u007f-\uffff]/g;

/**
 * Quotes a string as Python does with `ensure_ascii=True`.
 *
 * `JSON.stringify` already writes the escapes Python writes for ASCII text: `\"`,
 * `\\`, the short forms `\b \f \n \r \t`, `\u00XX` in lowercase hex for other
 * control characters, and `\udXXX` for lone surrogates. What remains is DEL and
 * every non-ASCII code unit, which Python escapes one UTF-16 code unit at a time,
 * so a character above U+FFFF becomes an escaped surrogate pair.
 */
function quoteString(text: string): string {
  // Most keys and values need no escape at all, and for them one regex test is
  // cheaper than calling JSON.stringify.
  if (!ANY_ESCAPE_NEEDED.test(text)) {
    return `"${text}"`;
  }

  const quoted = JSON.stringify(text);
  if (!NON_ASCII_OR_DEL.test(quoted)) {
    return quoted;
  }
  return quoted.replace(NON_ASCII_OR_DEL_GLOBAL, escapeCodeUnit);
}

function escapeCodeUnit(character: string): string {
  return "\\u" + character.charCodeAt(0).toString(16).padStart(4, "0");
}

/**
 * Formats a number as Python would print the value it stands for: an int when the
 * number is a mathematical integer, else a float.
 */
function formatNumber(value: number): string {
  if (!Number.isInteger(value)) {
    return formatFloat(value);
  }

  if (Object.is(value, -0)) {
    // Python ints have no negative zero, so only a float can carry the sign.
    return "-0.0";
  }

  // Above 2^53, String() prints the shortest digits padded with zeros (and switches to
  // exponent notation from 1e21 on), while Python's int(value) is the exact value.
  return Number.isSafeInteger(value) ? String(value) : BigInt(value).toString();
}

function formatBigInt(value: bigint): string {
  const magnitude = value < 0n ? -value : value;
  if (magnitude >= PYTHON_INT_LIMIT) {
    return failEncoding(
      (where) =>
        `Integer at ${where} has more than ${PYTHON_INT_MAX_DIGITS} digits, ` +
        "which Python refuses to convert to or from text by default. Send it as a string.",
    );
  }
  return value.toString();
}

/**
 * Formats a number as Python's `repr(float)`: the shortest digits that round-trip,
 * in positional form when the decimal exponent is in [-4, 16), else in exponent form
 * with a signed exponent of at least two digits (`1e-07`, `1e+16`). Positional form
 * always has a digit after the point (`1.0`).
 */
function formatFloat(value: number): string {
  if (Number.isNaN(value)) {
    return "NaN";
  }

  if (!Number.isFinite(value)) {
    return value > 0 ? "Infinity" : "-Infinity";
  }

  const magnitude = Math.abs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16 && !Number.isInteger(value)) {
    // In this range JavaScript's shortest form is already Python's positional form.
    return String(value);
  }

  if (magnitude === 0) {
    return Object.is(value, -0) ? "-0.0" : "0.0";
  }

  return formatFloatFromDigits(value);
}

function formatFloatFromDigits(value: number): string {
  // Without an argument, toExponential() yields the shortest round-trip digits.
  const [mantissa = "", exponentText = ""] = Math.abs(value).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exponent = Number(exponentText);
  const sign = value < 0 ? "-" : "";

  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? "." + digits.slice(1) : "";
    const exponentSign = exponent < 0 ? "-" : "+";
    const exponentDigits = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${digits.slice(0, 1)}${fraction}e${exponentSign}${exponentDigits}`;
  }

  const integerDigits = exponent + 1;
  if (integerDigits <= 0) {
    return `${sign}0.${"0".repeat(-integerDigits)}${digits}`;
  }

  if (integerDigits < digits.length) {
    return `${sign}${digits.slice(0, integerDigits)}.${digits.slice(integerDigits)}`;
  }

  return `${sign}${digits}${"0".repeat(integerDigits - digits.length)}.0`;
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

const BYTE_ORDER_MARK = 0xfeff;

/**
 * Decodes JSON text as Python `json.loads` does.
 *
 * Beyond standard JSON it accepts the tokens `NaN`, `Infinity` and `-Infinity`.
 * Integer literals outside the safe integer range become exact `bigint`s, and
 * float literals become numbers (`1e400` becomes Infinity, as in Python). For
 * duplicate keys the last value wins, and a `__proto__` key becomes an ordinary own
 * property. A leading byte-order mark is rejected, as Python rejects it.
 *
 * Throws {@link JsonSyntaxError} on invalid input, on integer literals of more than
 * 4300 digits (Python's default limit), and on arrays and objects nested deeper
 * than {@link MAX_NESTING_DEPTH}.
 */
export function decodeJson(text: string): unknown {
  if (typeof text !== "string") {
    throw new TypeError(`decodeJson expects a string, got ${describeType(text)}`);
  }

  if (text.charCodeAt(0) === BYTE_ORDER_MARK) {
    throw new JsonSyntaxError(
      "unexpected byte-order mark (U+FEFF). Python rejects it too, so strip it before decoding",
      0,
    );
  }

  // JSON.parse is the fast path. It rejects only text that is invalid for Python too
  // or that uses the NaN and Infinity tokens, and the hand-written parser then
  // decodes the text or reports the error with a position.
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return new PythonJsonParser(text).parseDocument();
  }

  return needsPythonParser(value, 0) ? new PythonJsonParser(text).parseDocument() : value;
}

/**
 * Tells whether `JSON.parse` may have decoded the text differently from Python, or
 * accepted nesting that the hand-written parser rejects.
 *
 * An integer literal outside the safe range rounds to a number of magnitude 2^53 or
 * more, and the integer literal `-0` yields -0 where Python has a plain 0. A float
 * literal of that size, or `-0.0`, is a false positive that only costs a second parse.
 * The walk stops at the depth limit, so it never recurses deeper than the limit.
 */
function needsPythonParser(value: unknown, depth: number): boolean {
  if (typeof value === "number") {
    return value === 0 ? Object.is(value, -0) : !(Math.abs(value) <= Number.MAX_SAFE_INTEGER);
  }

  if (typeof value !== "object" || value === null) {
    return false;
  }

  if (depth >= MAX_NESTING_DEPTH) {
    return true;
  }

  if (Array.isArray(value)) {
    for (const item of value) {
      if (needsPythonParser(item, depth + 1)) {
        return true;
      }
    }
    return false;
  }

  for (const member of Object.values(value)) {
    if (needsPythonParser(member, depth + 1)) {
      return true;
    }
  }
  return false;
}

// UTF-16 code units the parser dispatches on.
const CHAR_TAB = 0x09;
const CHAR_LINE_FEED = 0x0a;
const CHAR_CARRIAGE_RETURN = 0x0d;
const CHAR_SPACE = 0x20;
const CHAR_QUOTE = 0x22;
const CHAR_PLUS = 0x2b;
const CHAR_COMMA = 0x2c;
const CHAR_MINUS = 0x2d;
const CHAR_DOT = 0x2e;
const CHAR_DIGIT_0 = 0x30;
const CHAR_DIGIT_1 = 0x31;
const CHAR_DIGIT_9 = 0x39;
const CHAR_COLON = 0x3a;
const CHAR_UPPER_E = 0x45;
const CHAR_OPEN_BRACKET = 0x5b;
const CHAR_BACKSLASH = 0x5c;
const CHAR_CLOSE_BRACKET = 0x5d;
const CHAR_LOWER_E = 0x65;
const CHAR_OPEN_BRACE = 0x7b;
const CHAR_CLOSE_BRACE = 0x7d;

/** Maximum digit count of an integer literal that is always a safe integer (2^53 has 16 digits). */
const SAFE_INTEGER_DIGITS = 15;
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** Recursive-descent parser for the JSON dialect `json.loads` accepts. */
class PythonJsonParser {
  private position = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    const value = this.parseValue();

    this.skipWhitespace();
    if (this.position < this.text.length) {
      this.fail("unexpected data after the JSON value");
    }
    return value;
  }

  private parseValue(): unknown {
    this.skipWhitespace();

    const code = this.text.charCodeAt(this.position);
    switch (code) {
      case CHAR_OPEN_BRACE:
        return this.parseObject();
      case CHAR_OPEN_BRACKET:
        return this.parseArray();
      case CHAR_QUOTE:
        return this.parseString();
      default:
        break;
    }

    if (code === CHAR_MINUS || isDigit(code)) {
      return this.parseNumber();
    }
    return this.parseKeyword();
  }

  private parseKeyword(): unknown {
    if (this.consumeWord("null")) {
      return null;
    }
    if (this.consumeWord("true")) {
      return true;
    }
    if (this.consumeWord("false")) {
      return false;
    }
    if (this.consumeWord("NaN")) {
      return NaN;
    }
    if (this.consumeWord("Infinity")) {
      return Infinity;
    }
    return this.fail("expected a value");
  }

  private parseObject(): Record<string, unknown> {
    this.enterContainer();
    this.position++;

    const object: Record<string, unknown> = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.position) === CHAR_CLOSE_BRACE) {
      this.position++;
      this.depth--;
      return object;
    }

    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.position) !== CHAR_QUOTE) {
        this.fail("expected a property name in double quotes");
      }
      const key = this.parseString();

      this.skipWhitespace();
      this.expect(CHAR_COLON, "expected ':' after the property name");
      setOwnProperty(object, key, this.parseValue());

      this.skipWhitespace();
      const code = this.text.charCodeAt(this.position++);
      if (code === CHAR_CLOSE_BRACE) {
        break;
      }
      if (code !== CHAR_COMMA) {
        this.position--;
        this.fail("expected ',' or '}' after an object member");
      }
    }

    this.depth--;
    return object;
  }

  private parseArray(): unknown[] {
    this.enterContainer();
    this.position++;

    const array: unknown[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.position) === CHAR_CLOSE_BRACKET) {
      this.position++;
      this.depth--;
      return array;
    }

    for (;;) {
      array.push(this.parseValue());

      this.skipWhitespace();
      const code = this.text.charCodeAt(this.position++);
      if (code === CHAR_CLOSE_BRACKET) {
        break;
      }
      if (code !== CHAR_COMMA) {
        this.position--;
        this.fail("expected ',' or ']' after an array element");
      }
    }

    this.depth--;
    return array;
  }

  private enterContainer(): void {
    this.depth++;
    if (this.depth > MAX_NESTING_DEPTH) {
      this.fail(`arrays and objects are nested deeper than ${MAX_NESTING_DEPTH} levels`);
    }
  }

  private parseString(): string {
    const { text } = this;
    const start = this.position;
    let chunkStart = start + 1;
    let result = "";

    for (let index = chunkStart; index < text.length; index++) {
      const code = text.charCodeAt(index);

      if (code === CHAR_QUOTE) {
        this.position = index + 1;
        return result + text.slice(chunkStart, index);
      }

      if (code < CHAR_SPACE) {
        this.position = index;
        this.fail("unescaped control character in a string. Write it as a \\u00XX escape");
      }

      if (code === CHAR_BACKSLASH) {
        if (index + 1 >= text.length) {
          // A final backslash escapes nothing, so the string never ends.
          break;
        }
        result += text.slice(chunkStart, index);
        const escape = this.decodeEscape(index);
        result += escape.text;
        index = escape.end - 1;
        chunkStart = escape.end;
      }
    }

    this.position = start;
    return this.fail("unterminated string");
  }

  /** Decodes the escape sequence whose backslash is at `index`. */
  private decodeEscape(index: number): { text: string; end: number } {
    const marker = this.text.charAt(index + 1);

    const simple = SIMPLE_ESCAPES[marker];
    if (simple !== undefined) {
      return { text: simple, end: index + 2 };
    }

    if (marker === "u") {
      const codeUnit = this.parseHex4(index + 2);
      if (codeUnit >= 0) {
        // Surrogates combine by themselves in a UTF-16 string, and a lone one stays
        // lone, just as Python keeps it.
        return { text: String.fromCharCode(codeUnit), end: index + 6 };
      }
      this.position = index + 1;
      return this.fail("invalid \\uXXXX escape, which needs exactly four hex digits");
    }

    this.position = index;
    return this.fail("invalid escape sequence in a string");
  }

  /** Returns the value of the four hex digits at `index`, or -1 if they are not all hex. */
  private parseHex4(index: number): number {
    let value = 0;
    for (let offset = 0; offset < 4; offset++) {
      const digit = hexDigitValue(this.text.charCodeAt(index + offset));
      if (digit < 0) {
        return -1;
      }
      value = value * 16 + digit;
    }
    return value;
  }

  private parseNumber(): number | bigint {
    const { text } = this;
    const start = this.position;

    if (text.charCodeAt(this.position) === CHAR_MINUS) {
      this.position++;
      if (this.consumeWord("Infinity")) {
        return -Infinity;
      }
    }

    const integerStart = this.position;
    const first = text.charCodeAt(this.position);
    if (first === CHAR_DIGIT_0) {
      this.position++;
    } else if (first >= CHAR_DIGIT_1 && first <= CHAR_DIGIT_9) {
      this.skipDigits();
    } else {
      this.position = start;
      return this.fail("expected a value");
    }
    const integerDigits = this.position - integerStart;

    // A '.' or exponent without digits after it is not part of the number, so the
    // error lands on the next token, where Python reports it.
    let isFloat = false;
    const hasFraction =
      text.charCodeAt(this.position) === CHAR_DOT && isDigit(text.charCodeAt(this.position + 1));
    if (hasFraction) {
      isFloat = true;
      this.position++;
      this.skipDigits();
    }

    const exponentLength = this.measureExponent();
    if (exponentLength > 0) {
      isFloat = true;
      this.position += exponentLength;
    }

    const literal = text.slice(start, this.position);
    if (isFloat) {
      return Number(literal);
    }
    return this.convertInteger(literal, integerDigits, start);
  }

  private convertInteger(literal: string, digitCount: number, start: number): number | bigint {
    if (digitCount <= SAFE_INTEGER_DIGITS) {
      // Python's int has no negative zero, so "-0" is a plain 0.
      const value = Number(literal);
      return value === 0 ? 0 : value;
    }

    if (digitCount > PYTHON_INT_MAX_DIGITS) {
      this.position = start;
      this.fail(
        `integer literal has ${digitCount} digits, more than the ${PYTHON_INT_MAX_DIGITS} ` +
          "Python accepts by default",
      );
    }

    const value = BigInt(literal);
    const isSafe = value <= MAX_SAFE_BIGINT && value >= -MAX_SAFE_BIGINT;
    return isSafe ? Number(value) : value;
  }

  private skipDigits(): void {
    while (isDigit(this.text.charCodeAt(this.position))) {
      this.position++;
    }
  }

  /** Returns the length of the exponent part at the current position, or 0 if there is none. */
  private measureExponent(): number {
    const { text } = this;
    const marker = text.charCodeAt(this.position);
    if (marker !== CHAR_LOWER_E && marker !== CHAR_UPPER_E) {
      return 0;
    }

    let end = this.position + 1;
    const sign = text.charCodeAt(end);
    if (sign === CHAR_PLUS || sign === CHAR_MINUS) {
      end++;
    }

    if (!isDigit(text.charCodeAt(end))) {
      return 0;
    }
    while (isDigit(text.charCodeAt(end))) {
      end++;
    }
    return end - this.position;
  }

  private skipWhitespace(): void {
    const { text } = this;
    for (;;) {
      const code = text.charCodeAt(this.position);
      if (
        code !== CHAR_SPACE &&
        code !== CHAR_LINE_FEED &&
        code !== CHAR_CARRIAGE_RETURN &&
        code !== CHAR_TAB
      ) {
        return;
      }
      this.position++;
    }
  }

  private consumeWord(word: string): boolean {
    if (this.text.startsWith(word, this.position)) {
      this.position += word.length;
      return true;
    }
    return false;
  }

  private expect(code: number, detail: string): void {
    if (this.text.charCodeAt(this.position) !== code) {
      this.fail(detail);
    }
    this.position++;
  }

  private fail(detail: string): never {
    const ending = this.position >= this.text.length ? ", but the input ended" : "";
    throw new JsonSyntaxError(detail + ending, this.position);
  }
}

function isDigit(code: number): boolean {
  return code >= CHAR_DIGIT_0 && code <= CHAR_DIGIT_9;
}

function hexDigitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) {
    return code - 0x30;
  }
  // Folding to lowercase maps 'A'-'F' onto 'a'-'f'.
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) {
    return lower - 0x61 + 10;
  }
  return -1;
}

/**
 * Sets a member the way JSON.parse does. Plain assignment of `__proto__` would
 * replace the object's prototype instead of creating a property.
 */
function setOwnProperty(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    return;
  }
  object[key] = value;
}
