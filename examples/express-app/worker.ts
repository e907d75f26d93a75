/**
 * Entry module for the worker CLI: `npx melodramatiq examples/express-app/worker.ts`.
 * Building the app runs `broker.initApp(app)`, so the worker reads the same
 * settings as the web process and its tasks see the app through currentApp().
 */

import { createApp } from "./app.js";

export const app = createApp();
export { broker } from "./tasks.js";
