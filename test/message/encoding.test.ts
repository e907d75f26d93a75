import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";

import {
  EncodeError,
  JsonSyntaxError,
  MAX_NESTING_DEPTH,
  PyFloat,
  decodeJson,
  encodeJson,
  pyFloat,
} from "../../src/message/encoding.js";
import { loadVector } from "../helpers/vectors.js";

interface MessageCase {
  name: string;
  python: string;
  encoded: string;
  encoded_base64: string;
  encoded_length: number;
  encoded_sha256: string;
  decoded: unknown;
}

interface EncodeErrorCase {
  value: string;
  exception_type: string;
  exception: string;
}

interface DecodeCase {
  label: string;
  input: string | { base64: string };
  ok: boolean;
  note: string;
}

const vectors = loadVector("messages") as {
  cases: MessageCase[];
  encode_errors: EncodeErrorCase[];
  decode_cases: DecodeCase[];
};

function findCase(name: string): MessageCase {
  const found = vectors.cases.find((vector) => vector.name === name);
  assert.ok(found, `vector case ${name} is missing from messages.json`);
  return found;
}

/** Builds the envelope the vectors use for `echo` calls under the frozen clock and ids. */
function echoEnvelope(
  idSuffix: string,
  args: unknown[],
  kwargs: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    queue_name: "default",
    actor_name: "echo",
    args,
    kwargs,
    options: {},
    message_id: `00000000-0000-4000-8000-0000000000${idSuffix}`,
    message_timestamp: 1767225600000,
  };
}

/**
 * JavaScript values equivalent to the Python calls of some vector cases. They are
 * needed where decoding loses information (the float-ness of `1.0`, Map keys that
 * were not strings), and they test the encoder on input written by hand.
 */
const HAND_BUILT_VALUES: Record<string, unknown> = {
  kwargs_only: echoEnvelope("03", [], {
    name: "x",
    flag: true,
    none: null,
    items: [1, "two", pyFloat(3)],
  }),
  unicode: echoEnvelope("04", [
    "h\u00e9llo",
    "\u65e5\u672c\u8a9e",
    "\u{1F600}",
    "\n\t\r\b\f\x00\x1f\x7f",
    "\u2028",
    "/<>&'\"\\",
  ]),
  unicode_kwargs_keys: echoEnvelope("05", [], { "cl\u00e9": "v\u00e4lue" }),
  non_string_keys: echoEnvelope("07", [
    new Map<unknown, string>([
      [1, "one"],
      [2.5, "two-and-a-half"],
      [false, "no"],
      [null, "nothing"],
    ]),
  ]),
  big_ints: echoEnvelope("08", [
    0,
    -1,
    2 ** 31,
    2n ** 53n + 1n,
    2n ** 63n,
    2n ** 64n,
    -(2n ** 70n),
    10n ** 30n,
  ]),
  floats: echoEnvelope("09", [
    0.1,
    pyFloat(1),
    -0,
    2.5,
    pyFloat(1e16),
    pyFloat(1e15),
    1e-7,
    1e-4,
    3.141592653589793,
    pyFloat(1.7976931348623157e308),
    5e-324,
    123456789.123,
    pyFloat(1e22),
    pyFloat(1.2345678901234567e19),
  ]),
  non_finite_floats: echoEnvelope("0a", [NaN, Infinity, -Infinity]),
};

/**
 * Cases whose decode-then-encode round trip differs from the vector: an integral
 * float such as `1.0` or `1e+16` decodes to a plain number, which encodes as a
 * Python int. Their hand-built values above carry the float-ness with pyFloat.
 */
const CASES_LOSING_FLOAT_NESS = new Set(["kwargs_only", "floats"]);

/** Replaces bigints with numbers, because the vectors were parsed with JSON.parse, which rounds. */
function roundBigInts(value: unknown): unknown {
  if (typeof value === "bigint") {
    return Number(value);
  }

  if (Array.isArray(value)) {
    return value.map(roundBigInts);
  }

  if (typeof value === "object" && value !== null) {
    const rounded: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) {
      rounded[key] = roundBigInts(member);
    }
    return rounded;
  }

  return value;
}

type Envelope = Partial<Record<"queue_name" | "args" | "message_timestamp", unknown>>;

function asEnvelope(value: unknown): Envelope {
  assert.equal(typeof value, "object");
  assert.notEqual(value, null);
  return value as Envelope;
}

function asObject(value: unknown): object {
  assert.equal(typeof value, "object");
  assert.notEqual(value, null);
  return value as object;
}

function nestedArrayText(depth: number, inner: string): string {
  return "[".repeat(depth) + inner + "]".repeat(depth);
}

describe("golden message cases", () => {
  test("vector bytes match their checksums", () => {
    for (const vector of vectors.cases) {
      const bytes = Buffer.from(vector.encoded, "utf8");
      assert.equal(bytes.length, vector.encoded_length, vector.name);
      assert.equal(bytes.toString("base64"), vector.encoded_base64, vector.name);
      assert.equal(
        createHash("sha256").update(bytes).digest("hex"),
        vector.encoded_sha256,
        vector.name,
      );
    }
  });

  test("hand-built values encode to the exact bytes", () => {
    for (const [name, value] of Object.entries(HAND_BUILT_VALUES)) {
      assert.equal(encodeJson(value), findCase(name).encoded, name);
    }
  });

  test("decode then encode reproduces the bytes", () => {
    for (const name of CASES_LOSING_FLOAT_NESS) {
      assert.ok(name in HAND_BUILT_VALUES, `${name} needs a hand-built value`);
    }

    for (const vector of vectors.cases) {
      if (CASES_LOSING_FLOAT_NESS.has(vector.name)) {
        continue;
      }
      assert.equal(encodeJson(decodeJson(vector.encoded)), vector.encoded, vector.name);
    }
  });

  test("decoding matches the decoded value", () => {
    for (const vector of vectors.cases) {
      if (vector.decoded === null) {
        // Checked by hand below: NaN and Infinity have no strict JSON form.
        continue;
      }
      assert.deepEqual(roundBigInts(decodeJson(vector.encoded)), vector.decoded, vector.name);
    }
  });

  test("non-finite floats decode to NaN and infinities", () => {
    const decoded = asEnvelope(decodeJson(findCase("non_finite_floats").encoded));

    assert.deepEqual(decoded.args, [NaN, Infinity, -Infinity]);
    assert.equal(decoded.queue_name, "default");
  });

  test("big integers decode exactly", () => {
    const decoded = asEnvelope(decodeJson(findCase("big_ints").encoded));

    assert.deepEqual(decoded.args, [
      0,
      -1,
      2147483648,
      9007199254740993n,
      9223372036854775808n,
      18446744073709551616n,
      -1180591620717411303424n,
      1000000000000000000000000000000n,
    ]);
  });

  test("floats decode to the same numbers", () => {
    const decoded = asEnvelope(decodeJson(findCase("floats").encoded));

    assert.deepEqual(decoded.args, [
      0.1, 1, -0, 2.5, 1e16, 1e15, 1e-7, 1e-4, 3.141592653589793, 1.7976931348623157e308, 5e-324,
      123456789.123, 1e22, 1.2345678901234567e19,
    ]);
  });

  test("integral floats lose float-ness on decode", () => {
    // Python would decode `1.0` back to a float, but JavaScript has one number type.
    assert.equal(encodeJson(decodeJson("[1.0,1e+16,-0.0,2.5]")), "[1,10000000000000000,-0.0,2.5]");
  });
});

describe("encode errors", () => {
  class Decimal {
    constructor(readonly digits: string) {}
  }

  /** JavaScript counterparts of the Python values that json.dumps rejects. */
  const COUNTERPARTS: Record<string, { value: unknown; message: RegExp }[]> = {
    bytes: [
      { value: Buffer.from("x"), message: /^Object of type Buffer is not JSON serializable/ },
      { value: new Uint8Array(2), message: /^Object of type Uint8Array is not JSON serializable/ },
    ],
    datetime: [{ value: new Date(0), message: /^Object of type Date is not JSON serializable/ }],
    set: [{ value: new Set([1]), message: /^Object of type Set is not JSON serializable/ }],
    Decimal: [
      { value: new Decimal("1.5"), message: /^Object of type Decimal is not JSON serializable/ },
    ],
    tuple_dict_key: [
      {
        value: new Map([[[1, 2], "v"]]),
        message: /^keys must be str, int, float, bool or None, not Array/,
      },
    ],
    object: [
      { value: new (class Foo {})(), message: /^Object of type Foo is not JSON serializable/ },
    ],
  };

  test("every Python error has a counterpart", () => {
    for (const vector of vectors.encode_errors) {
      assert.ok(vector.value in COUNTERPARTS, `no counterpart for ${vector.value}`);
    }
  });

  test("counterparts throw EncodeError with path", () => {
    for (const [pythonType, counterparts] of Object.entries(COUNTERPARTS)) {
      for (const { value, message } of counterparts) {
        assert.throws(
          () => encodeJson({ args: [value] }),
          (error: unknown) => {
            assert.ok(error instanceof EncodeError, pythonType);
            assert.match(error.message, message);
            assert.match(error.message, /\(at args\[0\]\)/);
            assert.equal(error.path, "args[0]");
            return true;
          },
        );
      }
    }
  });

  test("EncodeError is a named Error", () => {
    assert.throws(
      () => encodeJson(new Date(0)),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.ok(error instanceof EncodeError);
        assert.equal(error.name, "EncodeError");
        assert.equal(error.path, "");
        assert.match(error.message, /\(at the top level\)/);
        assert.match(error.message, /toISOString\(\)/);
        return true;
      },
    );
  });

  const REJECTED_VALUES: { label: string; value: unknown; path: string; message: RegExp }[] = [
    {
      label: "undefined member",
      value: { kwargs: { missing: undefined } },
      path: "kwargs.missing",
      message: /^Object of type undefined is not JSON serializable.*use null/,
    },
    {
      label: "undefined at top level",
      value: undefined,
      path: "",
      message: /^Object of type undefined /,
    },
    {
      label: "undefined element",
      value: [1, undefined],
      path: "[1]",
      message: /^Object of type undefined /,
    },
    // eslint-disable-next-line no-sparse-arrays -- the hole is the case under test
    { label: "sparse array", value: [1, , 3], path: "[1]", message: /^Object of type undefined / },
    {
      label: "function",
      value: { callback: () => 1 },
      path: "callback",
      message: /^Object of type function /,
    },
    { label: "symbol", value: [Symbol("s")], path: "[0]", message: /^Object of type symbol / },
    { label: "RegExp", value: /x/, path: "", message: /^Object of type RegExp / },
    {
      label: "Promise",
      value: { pending: Promise.resolve(1) },
      path: "pending",
      message: /^Object of type Promise /,
    },
    { label: "WeakMap", value: [new WeakMap()], path: "[0]", message: /^Object of type WeakMap / },
    { label: "boxed number", value: [Object(1)], path: "[0]", message: /^Object of type Number / },
    { label: "Error", value: [new Error("x")], path: "[0]", message: /^Object of type Error / },
    {
      label: "anonymous class",
      value: [new (class {})()],
      path: "[0]",
      message: /^Object of type instance of an anonymous class /,
    },
    {
      label: "custom prototype",
      value: [Object.create({ inherited: 1 }) as unknown],
      path: "[0]",
      message: /^Object of type object with a custom prototype /,
    },
    {
      label: "toJSON not called",
      value: { when: { toJSON: () => "2026-01-01" } },
      path: "when.toJSON",
      message: /^Object of type function /,
    },
    {
      label: "class with toJSON",
      value: [
        new (class Stamp {
          toJSON(): string {
            return "stamp";
          }
        })(),
      ],
      path: "[0]",
      message: /^Object of type Stamp /,
    },
    {
      label: "non-identifier key in path",
      value: { "a-b": [1, new Set()] },
      path: '["a-b"][1]',
      message: /^Object of type Set .*Convert it to an array/,
    },
    {
      label: "Map value",
      value: { m: new Map([[1, new Date(0)]]) },
      path: 'm["1"]',
      message: /^Object of type Date /,
    },
    {
      label: "undefined Map key",
      value: { m: new Map([[undefined, 1]]) },
      path: "m",
      message: /^keys must be str, int, float, bool or None, not undefined/,
    },
    {
      label: "symbol Map key",
      value: new Map([[Symbol("k"), 1]]),
      path: "",
      message: /^keys must be str, int, float, bool or None, not symbol/,
    },
    {
      label: "object Map key",
      value: new Map([[{}, 1]]),
      path: "",
      message: /^keys must be str, int, float, bool or None, not Object/,
    },
  ];

  test("rejected values name type and path", () => {
    for (const { label, value, path, message } of REJECTED_VALUES) {
      assert.throws(
        () => encodeJson(value),
        (error: unknown) => {
          assert.ok(error instanceof EncodeError, label);
          assert.equal(error.path, path, label);
          assert.match(error.message, message, label);
          return true;
        },
      );
    }
  });

  test("circular references are detected", () => {
    const object: { a: number; self?: unknown } = { a: 1 };
    object.self = object;
    const array: unknown[] = [1];
    array.push([array]);
    const map = new Map<string, unknown>();
    map.set("inner", { map });

    const cases: [unknown, string][] = [
      [{ args: [object] }, "args[0].self"],
      [array, "[1][0]"],
      [map, "inner.map"],
    ];
    for (const [value, path] of cases) {
      assert.throws(
        () => encodeJson(value),
        (error: unknown) => {
          assert.ok(error instanceof EncodeError);
          assert.equal(error.path, path);
          assert.match(error.message, /^Circular reference detected/);
          return true;
        },
      );
    }
  });

  test("shared references are not cycles", () => {
    const shared = { x: 1 };

    assert.equal(encodeJson([shared, { again: shared }]), '[{"x":1},{"again":{"x":1}}]');
  });

  test("nesting beyond the limit is rejected", () => {
    let value: unknown = 1;
    for (let level = 0; level < MAX_NESTING_DEPTH; level++) {
      value = [value];
    }

    assert.equal(encodeJson(value), nestedArrayText(MAX_NESTING_DEPTH, "1"));
    assert.throws(() => encodeJson([value]), EncodeError);
    assert.throws(() => encodeJson({ deep: value }), /nested deeper than 1000 levels/);
  });

  test("integers beyond Python's digit limit are rejected", () => {
    const largest = 10n ** 4300n - 1n;

    assert.equal(encodeJson(largest), "9".repeat(4300));
    assert.equal(encodeJson(-largest), "-" + "9".repeat(4300));
    assert.throws(() => encodeJson([10n ** 4300n]), /more than 4300 digits/);
  });
});

describe("encoding values", () => {
  test("scalars encode like Python", () => {
    assert.equal(encodeJson(null), "null");
    assert.equal(encodeJson(true), "true");
    assert.equal(encodeJson(false), "false");
    assert.equal(encodeJson(""), '""');
    assert.equal(encodeJson(0), "0");
    assert.equal(encodeJson(-7), "-7");
    assert.equal(encodeJson(0n), "0");
    assert.equal(encodeJson(-(2n ** 64n)), "-18446744073709551616");
    assert.equal(encodeJson([]), "[]");
    assert.equal(encodeJson({}), "{}");
    assert.equal(encodeJson(new Map()), "{}");
  });

  test("objects keep insertion order", () => {
    const object = { zebra: 1, apple: [2, { nested: null }], mango: "m" };

    assert.equal(encodeJson(object), '{"zebra":1,"apple":[2,{"nested":null}],"mango":"m"}');
    assert.equal(encodeJson(Object.assign(Object.create(null) as object, { a: 1 })), '{"a":1}');
  });

  test("symbol keys are skipped", () => {
    assert.equal(encodeJson({ a: 1, [Symbol("hidden")]: 2 }), '{"a":1}');
  });

  test("Map keys convert like Python", () => {
    const map = new Map<unknown, string>([
      [1, "a"],
      [pyFloat(1), "b"],
      // A Map stores the key -0 as 0, so only a PyFloat key can carry the sign.
      [pyFloat(-0), "c"],
      [NaN, "d"],
      [Infinity, "e"],
      [true, "f"],
      [2n ** 64n, "g"],
      [1e-7, "h"],
      [pyFloat(1e16), "i"],
      ["caf\u00e9", "j"],
    ]);

    assert.equal(
      encodeJson(map),
      '{"1":"a","1.0":"b","-0.0":"c","NaN":"d","Infinity":"e","true":"f",' +
        '"18446744073709551616":"g","1e-07":"h","1e+16":"i","caf\\u00e9":"j"}',
    );
  });

  // Expected text printed by CPython 3.11 json.dumps for the same float or int.
  const NUMBER_FORMS: [unknown, string][] = [
    [pyFloat(1), "1.0"],
    [pyFloat(-1), "-1.0"],
    [pyFloat(0), "0.0"],
    [-0, "-0.0"],
    [pyFloat(-0), "-0.0"],
    [pyFloat(12345), "12345.0"],
    [pyFloat(1e15), "1000000000000000.0"],
    [pyFloat(9999999999999998), "9999999999999998.0"],
    [pyFloat(1e16), "1e+16"],
    [pyFloat(1e100), "1e+100"],
    [1e-5, "1e-05"],
    [1.5e-5, "1.5e-05"],
    [0.00012, "0.00012"],
    [9.999999999999999e-5, "9.999999999999999e-05"],
    [2.2250738585072014e-308, "2.2250738585072014e-308"],
    [-1.5e-300, "-1.5e-300"],
    [123456789012345.6, "123456789012345.6"],
    [0.1 + 0.2, "0.30000000000000004"],
    [0.5, "0.5"],
    [pyFloat(0.5), "0.5"],
    [pyFloat(NaN), "NaN"],
    [pyFloat(-Infinity), "-Infinity"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
    // Integral numbers are Python ints and print their exact value.
    [1e15, "1000000000000000"],
    [2 ** 53, "9007199254740992"],
    [1e16, "10000000000000000"],
    [86427985536025248, "86427985536025248"],
    [1e20, "100000000000000000000"],
    [1e21, "1000000000000000000000"],
    [1e22, "10000000000000000000000"],
    [1e23, "99999999999999991611392"],
  ];

  test("numbers print as Python prints them", () => {
    for (const [value, expected] of NUMBER_FORMS) {
      assert.equal(encodeJson(value), expected, expected);
    }
  });

  test("largest double prints as an int", () => {
    const text = encodeJson(Number.MAX_VALUE);

    assert.equal(text.length, 309);
    assert.ok(text.startsWith("17976931348623157081"), text);
    assert.equal(BigInt(text), BigInt(Number.MAX_VALUE));
  });

  test("PyFloat checks its argument", () => {
    assert.ok(pyFloat(2) instanceof PyFloat);
    assert.equal(pyFloat(2).value, 2);
    assert.throws(() => new PyFloat("2" as unknown as number), TypeError);
  });

  test("strings escape like Python", () => {
    assert.equal(
      encodeJson("a\"b\u00e9\n\u007f\ud800\u{1F600}</script>"),
      '"a\\"b\\u00e9\\n\\u007f\\ud800\\ud83d\\ude00</script>"',
    );
    assert.equal(encodeJson({ "k\u00e9y\n": 1 }), '{"k\\u00e9y\\n":1}');
  });

  test("every code unit escapes like Python", () => {
    const shortEscapes: Record<number, string> = {
      0x08: "\\b",
      0x09: "\\t",
      0x0a: "\\n",
      0x0c: "\\f",
      0x0d: "\\r",
      0x22: '\\"',
      0x5c: "\\\\",
    };

    for (let code = 0; code <= 0xffff; code++) {
      const character = String.fromCharCode(code);
      let expected = shortEscapes[code];
      if (expected === undefined) {
        const isPrintableAscii = code >= 0x20 && code < 0x7f;
        expected = isPrintableAscii ? character : "\\u" + code.toString(16).padStart(4, "0");
      }

      assert.equal(encodeJson(character), `"${expected}"`, `code unit ${code.toString(16)}`);
    }
  });
});

describe("decode cases", () => {
  type Outcome = "decodes" | "json-error" | "invalid-utf8";

  /**
   * What decodeJson does with each input. Python's message decoder also rejects
   * some valid JSON (missing or extra envelope members, `args: null`, a top-level
   * array), but those checks belong to the Message class, so the JSON decodes here.
   */
  const OUTCOMES: Record<string, Outcome> = {
    canonical: "decodes",
    pretty_printed: "decodes",
    reordered_keys: "decodes",
    raw_utf8_text: "decodes",
    missing_id_and_timestamp: "decodes",
    missing_options: "decodes",
    extra_field: "decodes",
    args_string: "decodes",
    args_object: "decodes",
    args_null: "decodes",
    kwargs_null: "decodes",
    options_null: "decodes",
    timestamp_float: "decodes",
    nan_token: "decodes",
    duplicate_keys: "decodes",
    invalid_utf8: "invalid-utf8",
    not_json: "json-error",
    json_array: "decodes",
    bom: "json-error",
  };

  test("every case has the expected outcome", () => {
    for (const vector of vectors.decode_cases) {
      const outcome = OUTCOMES[vector.label];
      assert.ok(outcome, `no expected outcome for ${vector.label}`);
      if (vector.ok) {
        assert.equal(outcome, "decodes", `${vector.label} decodes in Python`);
      }

      if (outcome === "invalid-utf8") {
        assert.ok(typeof vector.input === "object");
        const bytes = Buffer.from(vector.input.base64, "base64");
        // The bytes never reach decodeJson: a strict UTF-8 decoder rejects them first.
        assert.throws(() => new TextDecoder("utf-8", { fatal: true }).decode(bytes), TypeError);
        continue;
      }

      assert.equal(typeof vector.input, "string", vector.label);
      const text = vector.input as string;
      if (outcome === "json-error") {
        assert.throws(() => decodeJson(text), JsonSyntaxError, vector.label);
      } else {
        assert.doesNotThrow(() => decodeJson(text), vector.label);
      }
    }
  });

  function decodeCaseInput(label: string): string {
    const found = vectors.decode_cases.find((vector) => vector.label === label);
    assert.ok(found, `decode case ${label} is missing`);
    assert.equal(typeof found.input, "string");
    return found.input as string;
  }

  test("layout does not change the value", () => {
    const canonical = decodeJson(decodeCaseInput("canonical"));

    assert.deepEqual(decodeJson(decodeCaseInput("pretty_printed")), canonical);
    assert.deepEqual(decodeJson(decodeCaseInput("reordered_keys")), canonical);
  });

  test("selected values decode as Python does", () => {
    const rawText = asEnvelope(decodeJson(decodeCaseInput("raw_utf8_text")));
    assert.deepEqual(rawText.args, ["h\u00e9llo \u{1F600}"]);

    const tokens = asEnvelope(decodeJson(decodeCaseInput("nan_token")));
    assert.deepEqual(tokens.args, [NaN, Infinity, -Infinity]);

    const floatTimestamp = asEnvelope(decodeJson(decodeCaseInput("timestamp_float")));
    assert.equal(floatTimestamp.message_timestamp, 1767225600000.5);

    const duplicates = asEnvelope(decodeJson(decodeCaseInput("duplicate_keys")));
    assert.equal(duplicates.queue_name, "default");
    assert.equal(Object.keys(duplicates)[0], "queue_name");

    assert.deepEqual(decodeJson(decodeCaseInput("json_array")), [1, 2]);
  });

  test("a leading byte-order mark is rejected", () => {
    assert.throws(
      () => decodeJson(decodeCaseInput("bom")),
      (error: unknown) => {
        assert.ok(error instanceof JsonSyntaxError);
        assert.equal(error.position, 0);
        assert.match(error.message, /byte-order mark/);
        return true;
      },
    );
  });
});

describe("decoding numbers", () => {
  test("safe range boundary", () => {
    assert.equal(decodeJson("9007199254740991"), 9007199254740991);
    assert.equal(decodeJson("-9007199254740991"), -9007199254740991);
    assert.equal(decodeJson("9007199254740992"), 9007199254740992n);
    assert.equal(decodeJson("-9007199254740992"), -9007199254740992n);
    assert.equal(decodeJson("1000000000000000"), 1e15);
  });

  test("large integers become exact bigints", () => {
    assert.equal(decodeJson("9007199254740993"), 2n ** 53n + 1n);
    assert.equal(decodeJson("-1180591620717411303424"), -(2n ** 70n));
    assert.deepEqual(decodeJson('{"n":[12345678901234567890]}'), { n: [12345678901234567890n] });
  });

  test("digit limit matches Python", () => {
    assert.equal(decodeJson("9".repeat(4300)), 10n ** 4300n - 1n);
    assert.throws(
      () => decodeJson("[" + "9".repeat(4301) + "]"),
      (error: unknown) => {
        assert.ok(error instanceof JsonSyntaxError);
        assert.equal(error.position, 1);
        assert.match(error.message, /4301 digits/);
        return true;
      },
    );
  });

  test("float literals stay numbers", () => {
    assert.equal(decodeJson("1e400"), Infinity);
    assert.equal(decodeJson("-1e400"), -Infinity);
    assert.equal(decodeJson("1E2"), 100);
    assert.equal(decodeJson("12345678901234567890.5"), Number("12345678901234567890.5"));
    assert.equal(decodeJson("5e-324"), 5e-324);
  });

  test("integer -0 is zero", () => {
    // Python ints have no sign on zero, but the float -0.0 keeps it.
    assert.ok(Object.is(decodeJson("-0"), 0));
    assert.ok(Object.is(decodeJson("-0.0"), -0));
    assert.deepEqual(decodeJson('{"a":[-0,-0.0]}'), { a: [0, -0] });
    assert.deepEqual(decodeJson("[-0,NaN]"), [0, NaN]);
  });
});

describe("decoding structure", () => {
  test("__proto__ key stays an own property", () => {
    for (const text of ['{"__proto__":{"polluted":1}}', '{"__proto__":{"polluted":1},"n":NaN}']) {
      const decoded = asObject(decodeJson(text));

      assert.ok(Object.hasOwn(decoded, "__proto__"), text);
      assert.equal(Object.getPrototypeOf(decoded), Object.prototype, text);
      const descriptor = Object.getOwnPropertyDescriptor(decoded, "__proto__");
      assert.deepEqual(descriptor?.value, { polluted: 1 }, text);
      assert.equal((decoded as { polluted?: unknown }).polluted, undefined, text);
      assert.equal(({} as { polluted?: unknown }).polluted, undefined, text);
    }
  });

  test("__proto__ key re-encodes", () => {
    const text = '{"__proto__":{"polluted":1},"b":2}';

    assert.equal(encodeJson(decodeJson(text)), text);
  });

  test("duplicate keys keep the last value", () => {
    assert.deepEqual(decodeJson('{"a":1,"b":2,"a":3}'), { a: 3, b: 2 });
    assert.deepEqual(decodeJson('{"a":1,"b":NaN,"a":3}'), { a: 3, b: NaN });
    assert.deepEqual(Object.keys(asObject(decodeJson('{"a":1,"b":NaN,"a":3}'))), ["a", "b"]);
  });

  test("index-like keys come first", () => {
    // NOTE: a JavaScript object orders keys such as "1" before other keys, so this
    // Python dict order does not survive decoding.
    assert.deepEqual(Object.keys(asObject(decodeJson('{"b":1,"1":2}'))), ["1", "b"]);
  });

  test("string escapes decode", () => {
    assert.equal(
      decodeJson('"\\u00e9\\ud83d\\ude00\\ud800\\/\\b\\f\\n\\r\\t\\"\\\\\\u00E9"'),
      "\u00e9\u{1F600}\ud800/\b\f\n\r\t\"\\\u00e9",
    );
    assert.deepEqual(decodeJson('["\\u00e9\\ud800x",NaN]'), ["\u00e9\ud800x", NaN]);
  });

  test("fast and slow paths agree", () => {
    const samples = [
      '{"queue_name":"default","args":[1,2.5,"x"],"kwargs":{"k":{"n":null}},"options":{}}',
      '  [ true , false , null , "\\u00e9\\n" , 1e-7 , -12 , 0.5 , [] , {} ]  ',
      '"caf\u00e9 \u{1F600}"',
      '{"__proto__":[1],"a":{"1":2,"b":3}}',
      "123456789012345",
      "[0.25e2,-1.5E-3]",
    ];

    for (const sample of samples) {
      // The NaN token forces the hand-written parser for the wrapped copy.
      const wrapped = decodeJson(`[${sample},NaN]`) as unknown[];
      assert.deepEqual(wrapped[0], decodeJson(sample), sample);
      assert.deepEqual(wrapped[0], JSON.parse(sample), sample);
    }
  });

  test("nesting limit applies on both paths", () => {
    assert.equal(
      (decodeJson(nestedArrayText(MAX_NESTING_DEPTH, "1")) as unknown[]).length,
      1,
    );
    assert.equal(
      (decodeJson(nestedArrayText(MAX_NESTING_DEPTH, "NaN")) as unknown[]).length,
      1,
    );

    for (const inner of ["1", "NaN"]) {
      assert.throws(
        () => decodeJson(nestedArrayText(MAX_NESTING_DEPTH + 1, inner)),
        (error: unknown) => {
          assert.ok(error instanceof JsonSyntaxError);
          assert.equal(error.position, MAX_NESTING_DEPTH);
          assert.match(error.message, /nested deeper than 1000 levels/);
          return true;
        },
      );
    }
  });

  test("very deep input fails cleanly", () => {
    assert.throws(() => decodeJson("[".repeat(100_000)), JsonSyntaxError);
    assert.throws(() => decodeJson(nestedArrayText(100_000, "1")), JsonSyntaxError);
    assert.throws(() => decodeJson(nestedArrayText(100_000, "NaN")), JsonSyntaxError);
    const deepObjects = '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000);
    assert.throws(() => decodeJson(deepObjects), JsonSyntaxError);
  });

  test("non-string input is a TypeError", () => {
    assert.throws(() => decodeJson(Buffer.from("{}") as unknown as string), TypeError);
  });
});

describe("syntax errors", () => {
  // Positions are the ones CPython 3.11 json.loads reports for the same text.
  const INVALID_TEXTS: [string, number][] = [
    ["", 0],
    ["  ", 2],
    ["hello", 0],
    ["nan", 0],
    ["-NaN", 0],
    ["tru", 0],
    ["-", 0],
    ["[-]", 1],
    ["[1,]", 3],
    ["[1 2]", 3],
    ["[1,2", 4],
    ["[1,2]]", 5],
    ["[1] [2]", 4],
    ['{"a" 1}', 5],
    ['{"a"', 4],
    ['{"a":1', 6],
    ['{"a":1,}', 7],
    ["{'a':1}", 1],
    ["{1:2}", 1],
    ["[01]", 2],
    ["[1.]", 2],
    ["[.5]", 1],
    ["[+1]", 1],
    ["1e", 1],
    ["1e5e", 3],
    ['"a\u0001"', 2],
    ['"\\x"', 1],
    ['"\\u12g4"', 2],
    ['"\\u00"', 2],
    ['"abc', 0],
    ['"abc\\', 0],
    ["/* c */ 1", 0],
    ["\u00a0 1", 0],
    [" \ufeff{}", 1],
    ["\ufeff{}", 0],
  ];

  test("invalid text reports Python's position", () => {
    for (const [text, position] of INVALID_TEXTS) {
      assert.throws(
        () => decodeJson(text),
        (error: unknown) => {
          assert.ok(error instanceof JsonSyntaxError, JSON.stringify(text));
          assert.ok(error instanceof SyntaxError);
          assert.equal(error.name, "JsonSyntaxError");
          assert.equal(error.position, position, JSON.stringify(text));
          assert.match(error.message, new RegExp(`^Invalid JSON at position ${position}: `));
          return true;
        },
      );
    }
  });

  test("error message names the problem", () => {
    assert.throws(
      () => decodeJson("[1,2"),
      /expected ',' or '\]' after an array element, but the input ended/,
    );
    assert.throws(() => decodeJson('"abc'), /unterminated string/);
    assert.throws(() => decodeJson("[1] x"), /unexpected data after the JSON value/);
  });
});
