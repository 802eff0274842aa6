#!/usr/bin/env node
/**
 * Regenerates the golden snapshots in test/golden/snapshots (an OCI layout) and
 * test/golden/expected.json from guests/build/golden.elf with the current format.
 * Run it only for a deliberate format or ABI break: docs/snapshot-versioning.md.
 * Usage: npm run golden:regenerate
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { Sandbox, SandboxBuilder, Snapshot } = await import(path.join(root, "dist/src/index.js"));
const out = path.join(root, "test/golden/snapshots");
const twice = { name: "golden_twice", params: ["i32"], returns: "i32", impl: (x) => 2 * x };

fs.rmSync(out, { recursive: true, force: true });
const expected = {};

/** Records what the test will check for `tag`, as read back from the saved snapshot. */
async function record(tag, prepared, digest, extraHostFunctions = []) {
  const loaded = await Snapshot.checkedLoad(out, tag);
  const sb = await Sandbox.fromSnapshot(loaded, { hostFunctions: [twice, ...extraHostFunctions] });
  expected[tag] = {
    digest,
    prepared,
    generation: loaded.generation,
    functions: loaded.functions,
    hostFunctions: loaded.hostFunctions,
    memorySize: loaded.memorySize,
    marker: sb.callSync("get_marker"),
    patternHash: sb.callSync("pattern_hash"),
    hostRoundTrip: { arg: 5, result: sb.callSync("host_round_trip", 5) },
  };
  sb.close();
}

// 1. A sandbox built from the ELF, prepared, snapshotted.
const basicPrep = { marker: 1234, len: 3000, seed: 7 };
const sb = await new SandboxBuilder().guest(path.join(root, "guests/build/golden.elf")).heapSize(64 * 1024).stackSize(64 * 1024)
  .hostFunction("golden_twice", ["i32"], "i32", twice.impl).build();
sb.callSync("prepare", basicPrep.marker, basicPrep.len, basicPrep.seed);
const basic = sb.snapshot();
sb.close();
await record("basic-v1", basicPrep, await basic.save(out, "basic-v1", { guestName: "golden.elf" }));

// 2. A second generation: from the first, a host function registered after creation, log level debug.
const extra = { name: "golden_extra", params: [], returns: "void", impl: () => undefined };
const second = await Sandbox.fromSnapshot(await Snapshot.load(out, "basic-v1"), { hostFunctions: [twice], maxGuestLogLevel: "debug" });
second.registerHostFunction(extra.name, extra.params, extra.returns, extra.impl);
const secondPrep = { marker: -42, len: 5000, seed: 13 };
second.callSync("prepare", secondPrep.marker, secondPrep.len, secondPrep.seed);
const gen2 = second.snapshot();
second.close();
await record("second-generation-v1", secondPrep, await gen2.save(out, "second-generation-v1", { guestName: "golden.elf" }), [extra]);

fs.rmSync(path.join(out, ".vmlet.lock"), { force: true });
fs.writeFileSync(path.join(root, "test/golden/expected.json"), `${JSON.stringify(expected, null, 2)}\n`);
console.log(`golden snapshots written to ${path.relative(root, out)}: ${Object.keys(expected).join(", ")}`);
