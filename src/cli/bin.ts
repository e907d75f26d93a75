#!/usr/bin/env node
/** The `melodramatiq` command. */

import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2));
