/**
 * A short run of each fuzzer (fuzz/, `npm run fuzz` for the long one) with a fixed seed:
 * every input must end in a result or a VmletError. On failure the message carries the
 * seed, the input index and the shrunk input that reproduce it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fuzzers, type FuzzerName } from "../fuzz/fuzzers.js";
import { formatReport } from "../fuzz/harness.js";

const SEED = 20261206;
const SECONDS = 4;

for (const name of Object.keys(fuzzers) as FuzzerName[]) {
  test(`fuzz smoke: ${name} (seed ${SEED}, ${SECONDS} s)`, async () => {
    const fuzzer = await fuzzers[name]();
    try {
      const report = await fuzzer.run({ seed: SEED, inputs: 1_000_000, seconds: SECONDS });
      console.log(formatReport(report));
      assert.ok(report.inputs > 0, "no input ran");
      assert.equal(report.failures.length, 0, formatReport(report));
    } finally {
      await fuzzer.close();
    }
  });
}
