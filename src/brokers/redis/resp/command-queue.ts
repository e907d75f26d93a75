/** A first-in, first-out queue of commands awaiting their replies. */

import type { Reply } from "./reply-parser.js";

/** A command sent or waiting to be sent, with the callbacks of its promise. */
export interface PendingCommand {
  /** The command name, for error messages. */
  readonly name: string;
  readonly pieces: readonly (string | Buffer)[];
  /** Whether the reply keeps its strings as Buffers. */
  readonly buffers: boolean;
  /** Replies still expected: SUBSCRIBE of n channels gets one confirmation per channel. */
  repliesLeft: number;
  /** Failed reconnection attempts this command waited through in the offline queue. */
  failedAttempts: number;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: Error) => void;
}

/** A queue with O(1) removal from the front; Array.shift copies the array once it grows large. */
export class CommandQueue {
  private items: (PendingCommand | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(command: PendingCommand): void {
    this.items.push(command);
  }

  peek(): PendingCommand | undefined {
    return this.items[this.head];
  }

  shift(): PendingCommand | undefined {
    const command = this.items[this.head];
    if (command === undefined) {
      return undefined;
    }

    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return command;
  }

  /** Empties the queue and returns its commands in order. */
  takeAll(): PendingCommand[] {
    const commands = this.items.slice(this.head).filter((command) => command !== undefined);
    this.items = [];
    this.head = 0;
    return commands;
  }
}
