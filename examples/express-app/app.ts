/**
 * The example web app. `POST /orders` enqueues a task with the order taken
 * from the request body; `GET /orders` lists the orders workers finished.
 *
 * Settings come from environment variables (`DRAMATIQ_BROKER_URL`,
 * `DRAMATIQ_BROKER_CLASS`, `ORDER_LOG_PATH`, `APP_NAME`), copied into
 * `app.set()` where the lazy broker reads them.
 */

import { randomUUID } from "node:crypto";

import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { setBrokerSettingsFromEnv } from "melodramatiq/express";

import { OrderLog } from "./order-log.js";
import { broker, processOrder } from "./tasks.js";

/** Builds the app and initialises the broker with its settings. `settings` override the environment. */
export function createApp(settings: Record<string, unknown> = {}): Express {
  const app = express();
  app.use(express.json());

  app.set("APP_NAME", process.env["APP_NAME"] ?? "orders-example");
  app.set("ORDER_LOG_PATH", process.env["ORDER_LOG_PATH"]);
  setBrokerSettingsFromEnv(app);
  for (const [name, value] of Object.entries(settings)) {
    app.set(name, value);
  }

  app.locals["orderLog"] = new OrderLog(app.get("ORDER_LOG_PATH") as string | undefined);
  broker.initApp(app);

  app.post("/orders", (request, response) => {
    void createOrder(request, response);
  });
  app.get("/orders", (_request, response) => {
    void listOrders(app, response);
  });
  app.get("/health", (_request, response) => {
    response.json({ status: "ok" });
  });

  // Malformed JSON bodies get a JSON error, not Express's HTML stack trace.
  app.use((error: unknown, _request: Request, response: Response, next: NextFunction) => {
    if (error instanceof SyntaxError) {
      response.status(400).json({ error: `Invalid JSON body: ${error.message}` });
      return;
    }
    next(error);
  });

  return app;
}

async function createOrder(request: Request, response: Response): Promise<void> {
  const body = (request.body ?? {}) as { item?: unknown; quantity?: unknown };
  const item = body.item;
  const quantity = body.quantity ?? 1;
  if (typeof item !== "string" || item === "" || typeof quantity !== "number" || !Number.isInteger(quantity) || quantity < 1) {
    response.status(400).json({ error: 'Send JSON like {"item": "book", "quantity": 2}: item is a non-empty string, quantity a whole number of at least 1.' });
    return;
  }

  const orderId = randomUUID();
  try {
    const message = await processOrder.send(orderId, item, quantity);
    response.status(202).json({ orderId, messageId: message.messageId });
  } catch (error) {
    // The broker could not take the message: tell the client to retry.
    response.status(503).json({ error: `Could not queue the order: ${(error as Error).message}` });
  }
}

async function listOrders(app: Express, response: Response): Promise<void> {
  const orderLog = app.locals["orderLog"] as OrderLog;
  response.json(await orderLog.list());
}
