#!/usr/bin/env node
/** The `vmlet` bin: the command line of cli.ts on this process's argv, stdout and stderr. */
import { runCli, wantsJson } from "./cli.js";
import { processIo } from "./io.js";

// `vmlet snapshot ls … | head` closes the pipe early: stop quietly.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

const argv = process.argv.slice(2);
void runCli(argv, processIo(wantsJson(argv))).then((code) => (process.exitCode = code));

