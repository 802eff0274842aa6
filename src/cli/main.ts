#!/usr/bin/env node
/** The vmlet command line: a thin layer over the library. */
import { demo } from "./demo.js";
import { doctor } from "./doctor.js";

const USAGE = `usage: vmlet <command>
  demo     build the demo guest, call it, show a caught fault and latencies
  doctor   check that this machine can run sandboxes (KVM, flavour)`;

async function main(argv: readonly string[]): Promise<number> {
  const print = (line: string): void => console.log(line);
  switch (argv[0]) {
    case "demo":
      await demo(print);
      return 0;
    case "doctor":
      return (await doctor(print)) ? 0 : 1;
    case undefined:
    case "help":
    case "--help":
      print(USAGE);
      return argv[0] === undefined ? 1 : 0;
    default:
      console.error(`vmlet: unknown command "${argv[0]}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(`vmlet: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
