/** The fuzzed boundaries by name (fuzz/main.ts and the smoke test run them), each set up and run the same way. */
import { exitRecordsTarget } from "./exit-records.js";
import { runFuzzer, type FuzzReport, type FuzzTarget, type RunOptions } from "./harness.js";
import { hostResultsTarget } from "./host-results.js";
import { snapshotLayoutsTarget } from "./snapshot-layouts.js";


/** A fuzzer set up and ready: its input type stays inside. */
export interface ReadyFuzzer {
  run(options: RunOptions): Promise<FuzzReport>;
  close(): Promise<void> | void;
}

const ready =
  <I>(setUp: () => Promise<FuzzTarget<I>>, defaults: Partial<RunOptions> = {}) =>
  async (): Promise<ReadyFuzzer> => {
    const target = await setUp();
    return { run: (options) => runFuzzer(target, { ...defaults, ...options }), close: () => target.close() };
  };

export const fuzzers = {
  // The fuzz guest never spins: a TIMEOUT there means the host kept the guest running.
  "exit-records": ready(exitRecordsTarget, { failOn: ["TIMEOUT"] }),
  "host-results": ready(hostResultsTarget),
  "snapshot-layouts": ready(snapshotLayoutsTarget),
};

export type FuzzerName = keyof typeof fuzzers;
