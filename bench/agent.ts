/**
 * The work every agent does the same way, whichever library it drives:
 * counting processed messages, enqueueing through a window of concurrent
 * sends, and sending at a steady rate.
 */

import { cpuMsSince, monotonicMs, peakRssMiB, sleep } from "./clock.js";
import type { PhaseResult } from "./protocol.js";

/** One library's side of an agent process. */
export interface Agent {
  /** Connects, so that connection setup stays out of the measured phases. */
  prepare(): Promise<void>;
  /** Enqueues one message carrying `sequence`. */
  sendOne(sequence: number): Promise<unknown>;
  /** Enqueues one message for the `latency` actor, carrying its send time. */
  sendTimed(sentAt: number): Promise<unknown>;
  /** Starts a worker that reports each processed message to `recorder`. */
  startWorker(recorder: Recorder): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Counts what a worker processed and, for the `latency` actor, how long each message waited. */
export class Recorder {
  processed = 0;
  /** When the latest message finished, in `monotonicMs()`. */
  lastFinishedAt = 0;
  readonly latenciesMs: number[] = [];

  /** Called by the actor as its last step. */
  finished(): void {
    this.processed += 1;
    this.lastFinishedAt = monotonicMs();
  }

  /** Called by the `latency` actor as its first step, with the time its message was sent (negative for a warm-up message). */
  started(sentAt: number): void {
    if (sentAt >= 0) {
      this.latenciesMs.push(monotonicMs() - sentAt);
    }
  }
}

/** Enqueues `count` messages, keeping at most `window` sends in flight. */
export async function enqueueWindowed(agent: Agent, count: number, window: number): Promise<PhaseResult> {
  const cpu = process.cpuUsage();
  const startedAt = monotonicMs();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const sequence = next;
      next += 1;
      await agent.sendOne(sequence);
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, Math.min(window, count)) }, lane));
  return { startedAt, finishedAt: monotonicMs(), count, peakRssMiB: peakRssMiB(), cpuMs: cpuMsSince(cpu) };
}

/** Send time of warm-up messages, which the `latency` actor does not time. */
const WARM_UP_SENT_AT = -1;

/**
 * Sends `warmUp` untimed messages, waits `idleMs`, then sends `rate`
 * messages per second for `seconds` seconds on a fixed schedule: message i
 * is due `i / rate` seconds after the start. Sends that fall behind go out
 * at once, so a slow send delays no later schedule.
 *
 * The warm-up keeps one-time costs out of the timed messages: the first
 * send of a producer declares the queues (tens of ms on RabbitMQ), and the
 * first messages run through code that V8 has not compiled yet.
 */
export async function sendSteadily(agent: Agent, warmUp: number, idleMs: number, rate: number, seconds: number): Promise<PhaseResult> {
  for (let sequence = 0; sequence < warmUp; sequence += 1) {
    await agent.sendTimed(WARM_UP_SENT_AT);
  }
  await sleep(idleMs);

  const cpu = process.cpuUsage();
  const total = Math.max(1, Math.round(rate * seconds));
  const intervalMs = 1000 / rate;
  const startedAt = monotonicMs();
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  let sent = 0;

  while (sent < total) {
    const due = Math.min(total, Math.floor((monotonicMs() - startedAt) / intervalMs) + 1);
    for (; sent < due; sent += 1) {
      const send = agent.sendTimed(monotonicMs()).then(
        () => undefined,
        (error: unknown) => {
          failure ??= error instanceof Error ? error : new Error(String(error));
        },
      );
      inFlight.add(send);
      void send.finally(() => inFlight.delete(send));
    }
    await sleep(Math.max(0, startedAt + sent * intervalMs - monotonicMs()));
  }

  await Promise.all(inFlight);
  if (failure !== undefined) {
    throw failure;
  }
  return { startedAt, finishedAt: monotonicMs(), count: warmUp + total, peakRssMiB: peakRssMiB(), cpuMs: cpuMsSince(cpu) };
}
