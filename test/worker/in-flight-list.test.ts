import assert from "node:assert/strict";
import { test } from "node:test";

import { InFlightList } from "../../src/worker/in-flight-list.js";

test("keeps items in insertion order and removes any of them", () => {
  const list = new InFlightList<string>();
  const a = list.add("a");
  const b = list.add("b");
  const c = list.add("c");

  assert.equal(list.size, 3);
  assert.equal(list.first, "a");
  assert.deepEqual(list.values(), ["a", "b", "c"]);

  assert.equal(list.remove(b), true);
  assert.deepEqual(list.values(), ["a", "c"]);
  assert.equal(list.remove(a), true);
  assert.equal(list.first, "c");
  assert.equal(list.remove(c), true);

  assert.equal(list.size, 0);
  assert.equal(list.first, undefined);
  assert.deepEqual(list.values(), []);
  assert.equal(list.add("d").value, "d");
  assert.deepEqual(list.values(), ["d"]);
});

test("an entry is removed once, and only from its own list", () => {
  const list = new InFlightList<number>();
  const other = new InFlightList<number>();
  const entry = list.add(1);
  const stranger = other.add(2);

  assert.equal(list.has(entry), true);
  assert.equal(list.has(stranger), false);
  assert.equal(list.has(undefined), false);
  assert.equal(list.has({ list }), false);
  assert.equal(list.remove(stranger), false);
  assert.deepEqual(other.values(), [2]);

  assert.equal(list.remove(entry), true);
  assert.equal(list.remove(entry), false);
  assert.equal(list.has(entry), false);
  assert.equal(list.size, 0);
});

test("a removed entry keeps no link to the entries around it", () => {
  // The reason for the list: a done entry that reached V8's old generation
  // must not keep newer entries alive through young-generation collections.
  const list = new InFlightList<number>();
  const first = list.add(1);
  const middle = list.add(2);
  list.add(3);

  list.remove(middle);
  assert.equal(middle.previous, undefined);
  assert.equal(middle.next, undefined);
  assert.equal(middle.list, undefined);

  const cleared = list.clear();
  assert.deepEqual(cleared, [1, 3]);
  assert.equal(first.next, undefined);
  assert.equal(list.size, 0);
  assert.equal(list.remove(first), false);
});

test("removeWhere removes the matching items and returns them in order", () => {
  const list = new InFlightList<number>();
  for (const value of [1, 2, 3, 4, 5]) {
    list.add(value);
  }

  assert.deepEqual(
    list.removeWhere((value) => value % 2 === 1),
    [1, 3, 5],
  );
  assert.deepEqual(list.values(), [2, 4]);
  assert.equal(list.size, 2);
  assert.deepEqual(
    list.removeWhere(() => false),
    [],
  );
});

test("values() is a copy that later changes do not affect", () => {
  const list = new InFlightList<string>();
  const entry = list.add("a");
  const snapshot = list.values();

  list.remove(entry);
  list.add("b");

  assert.deepEqual(snapshot, ["a"]);
});
