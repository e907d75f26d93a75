/**
 * Holds delayed messages in memory until their eta and hands each one back
 * when it is due. One timer serves the whole heap, armed for the earliest
 * eta, so thousands of delayed messages cost no timers of their own.
 */

import { Heap } from "./heap.js";
import type { MessageProxy } from "./message-proxy.js";

/** Node's timers overflow past 2^31 - 1 ms (24.8 days); longer waits re-arm in steps. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

interface HeldMessage {
  readonly eta: number;
  readonly sequence: number;
  readonly message: MessageProxy;
}

export class DelayScheduler {
  private readonly heap = new Heap<HeldMessage>((a, b) => a.eta < b.eta || (a.eta === b.eta && a.sequence < b.sequence));
  private sequence = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;

  constructor(private readonly onDue: (message: MessageProxy) => void) {}

  get size(): number {
    return this.heap.size;
  }

  /** Holds `message` until `eta` (UNIX ms). */
  hold(message: MessageProxy, eta: number): void {
    this.heap.push({ eta, sequence: this.sequence++, message });
    this.arm();
  }

  /** Stops the timer and returns every held message. */
  drain(): MessageProxy[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
    return this.heap.drain().map((held) => held.message);
  }

  private arm(): void {
    const next = this.heap.peek();
    if (next === undefined || next.eta >= this.timerDue) {
      return;
    }

    clearTimeout(this.timer);
    this.timerDue = next.eta;
    const wait = Math.min(Math.max(0, next.eta - Date.now()), MAX_TIMER_DELAY);
    this.timer = setTimeout(() => {
      this.fire();
    }, wait);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    const now = Date.now();
    for (let next = this.heap.peek(); next !== undefined && next.eta <= now; next = this.heap.peek()) {
      this.heap.pop();
      this.onDue(next.message);
    }
    this.arm();
  }
}
