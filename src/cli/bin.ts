#!/usr/bin/env node
/**
 * The `melodramatiq` command. The signal handlers are installed before the
 * rest of the command loads, which takes tens of milliseconds (more
 * through tsx), so that a SIGTERM in that time stops the command with 0
 * instead of killing it with status 143.
 */

import { MainProcessSignals } from "./main-signals.js";

const signals = MainProcessSignals.install();
const { main } = await import("./main.js");
process.exitCode = await main(process.argv.slice(2), signals);
