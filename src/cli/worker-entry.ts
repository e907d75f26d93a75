/**
 * The script each worker process runs; the main process forks it with the
 * settings as JSON in the first argument. It exits explicitly because open
 * handles (the IPC channel, broker timers) would keep it alive otherwise.
 */

import { parseWorkerProcessConfig } from "./ipc.js";
import { tuneWorkerHeap } from "./worker-heap.js";
import { runWorkerProcess } from "./worker-process.js";

tuneWorkerHeap();
const config = parseWorkerProcessConfig(process.argv[2]);
process.exit(await runWorkerProcess(config));
