/**
 * The example's broker and actor. Both are created at import time, before
 * any app exists: the lazy broker opens no connection until `initApp(app)`
 * has configured it from the app's settings.
 */

import { Broker, currentApp } from "melodramatiq/express";

import type { OrderLog } from "./order-log.js";

/** Class and URL come from the app's `DRAMATIQ_BROKER_*` settings; RabbitmqBroker by default. */
export const broker = new Broker();

/** Queue of the example's actor; tests set ORDERS_QUEUE to keep runs apart. */
const queueName = process.env["ORDERS_QUEUE"] ?? "orders";

/**
 * Processes one order. It reads the app through currentApp(), which the
 * lazy broker provides to every task, and records its work there.
 */
export const processOrder = broker.actor(
  async function processOrder(orderId: string, item: string, quantity: number): Promise<void> {
    const app = currentApp();

    // Stands for real I/O, such as charging a card or calling a warehouse API.
    await new Promise((resolve) => setTimeout(resolve, 10));

    const orderLog = app.locals["orderLog"] as OrderLog;
    await orderLog.record({
      orderId,
      item,
      quantity,
      workerPid: process.pid,
      appName: String(app.get("APP_NAME")),
      finishedAt: new Date().toISOString(),
    });
  },
  { actorName: "process_order", queueName, maxRetries: 3, minBackoff: 1000 },
);
