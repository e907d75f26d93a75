/**
 * An insertion-ordered list of what a worker keeps while a message is in
 * flight: running tasks, unsettled deliveries, armed deadlines. Items
 * come and go at the message rate, and `add` returns the entry that
 * `remove` takes, so neither needs a lookup.
 *
 * Why not a Set or a Map: V8 keeps them in hash tables that it replaces
 * once deleted slots pile up, and a replaced table keeps a pointer to its
 * successor for iterators in progress. Under constant churn, a single
 * replaced table that reached the old generation keeps every later table,
 * and every item those tables held, alive through the young-generation
 * collections that would otherwise free them. Each message then ends up in
 * the old generation, a full collection has to clear it a few times a
 * second, and the worker's resident memory grows by about 5 MiB
 * (docs/benchmarks.md, "Memory"). An entry leaves this list with its links
 * cleared, so nothing that is done keeps anything newer alive.
 */

/** The handle of one item in an InFlightList. */
export class InFlightEntry<T> {
  /** @internal The list the entry is in, or undefined once removed. */
  list: InFlightList<T> | undefined;
  /** @internal */
  previous: InFlightEntry<T> | undefined = undefined;
  /** @internal */
  next: InFlightEntry<T> | undefined = undefined;

  constructor(
    readonly value: T,
    list: InFlightList<T>,
  ) {
    this.list = list;
  }
}

export class InFlightList<T> {
  private head: InFlightEntry<T> | undefined = undefined;
  private tail: InFlightEntry<T> | undefined = undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The oldest item still in the list. */
  get first(): T | undefined {
    return this.head?.value;
  }

  /** Reports whether `candidate` is an entry of this list. */
  has(candidate: unknown): candidate is InFlightEntry<T> {
    return candidate instanceof InFlightEntry && candidate.list === this;
  }

  /** Appends an item; keep the entry to remove it. */
  add(value: T): InFlightEntry<T> {
    const entry = new InFlightEntry(value, this);
    entry.previous = this.tail;
    if (this.tail === undefined) {
      this.head = entry;
    } else {
      this.tail.next = entry;
    }
    this.tail = entry;
    this.count += 1;
    return entry;
  }

  /** Removes an entry; returns false when it was removed already or belongs to another list. */
  remove(entry: InFlightEntry<T>): boolean {
    if (entry.list !== this) {
      return false;
    }

    const { previous, next } = entry;
    if (previous === undefined) {
      this.head = next;
    } else {
      previous.next = next;
    }
    if (next === undefined) {
      this.tail = previous;
    } else {
      next.previous = previous;
    }

    entry.list = undefined;
    entry.previous = undefined;
    entry.next = undefined;
    this.count -= 1;
    return true;
  }

  /** Returns a copy of the items, oldest first, that later changes do not affect. */
  values(): T[] {
    const values: T[] = [];
    for (let entry = this.head; entry !== undefined; entry = entry.next) {
      values.push(entry.value);
    }
    return values;
  }

  /** Removes the items for which `predicate` returns true and returns them, oldest first. */
  removeWhere(predicate: (value: T) => boolean): T[] {
    const removed: T[] = [];
    let entry = this.head;
    while (entry !== undefined) {
      const next = entry.next;
      if (predicate(entry.value)) {
        this.remove(entry);
        removed.push(entry.value);
      }
      entry = next;
    }
    return removed;
  }

  /** Removes every entry and returns their items, oldest first. */
  clear(): T[] {
    const values: T[] = [];
    let entry = this.head;
    while (entry !== undefined) {
      const next = entry.next;
      values.push(entry.value);
      entry.list = undefined;
      entry.previous = undefined;
      entry.next = undefined;
      entry = next;
    }

    this.head = undefined;
    this.tail = undefined;
    this.count = 0;
    return values;
  }
}
