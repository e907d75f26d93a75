/**
 * Where the example's actor records finished orders: in memory, for the
 * web process that runs an embedded worker, and, when a path is set, as one
 * JSON line per order in a file, which works across processes.
 */

import { appendFile, readFile } from "node:fs/promises";

export interface FinishedOrder {
  orderId: string;
  item: string;
  quantity: number;
  /** Process that ran the actor. */
  workerPid: number;
  /** `APP_NAME` setting of the app the actor saw through currentApp(). */
  appName: string;
  finishedAt: string;
}

export class OrderLog {
  private readonly entries: FinishedOrder[] = [];

  /** @param path file to append JSON lines to, or undefined to keep entries in memory only */
  constructor(readonly path: string | undefined) {}

  async record(order: FinishedOrder): Promise<void> {
    this.entries.push(order);
    if (this.path !== undefined) {
      await appendFile(this.path, `${JSON.stringify(order)}\n`);
    }
  }

  /** Returns finished orders: from the file when there is one (other processes write it too), else from memory. */
  async list(): Promise<FinishedOrder[]> {
    if (this.path === undefined) {
      return [...this.entries];
    }

    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return [];
      }
      throw error;
    }

    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as FinishedOrder);
  }
}
