#!/usr/bin/env node
/**
 * Regenerates the golden snapshots in test/golden/snapshots (an OCI layout) and
 * test/golden/expected.json from guests/build/golden.elf with the current format.
 * Run it only for a deliberate format or ABI break: docs/snapshot-versioning.md.
 * Usage: npm run golden:regenerate
 *        npm run golden:regenerate -- --add TAG   (a compatible change: adds one golden of
 *        the current SDK and format beside the existing ones, which stay untouched)
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { Sandbox, SandboxBuilder, Snapshot } = await import(path.join(root, "dist/src/index.js"));
const out = path.join(root, "test/golden/snapshots");
const twice = { name: "golden_twice", params: ["i32"], returns: "i32", impl: (x) => 2 * x };

const addAt = process.argv.indexOf("--add");
const addTag = addAt >= 0 ? process.argv[addAt + 1] : undefined;
if (addAt >= 0 && !addTag) throw new Error("--add needs a tag");
const expectedFile = path.join(root, "test/golden/expected.json");
const expected = addTag ? JSON.parse(fs.readFileSync(expectedFile, "utf8")) : {};
if (addTag && expected[addTag]) throw new Error(`golden ${addTag} exists already`);
if (!addTag) fs.rmSync(out, { recursive: true, force: true });

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

/** A sandbox built from the ELF and prepared. */
async function preparedGolden(prep) {
  const built = await new SandboxBuilder().guest(path.join(root, "guests/build/golden.elf")).heapSize(64 * 1024).stackSize(64 * 1024)
    .hostFunction("golden_twice", ["i32"], "i32", twice.impl).build();
  built.callSync("prepare", prep.marker, prep.len, prep.seed);
  return built;
}

if (addTag) {
  const prep = { marker: 2026, len: 4000, seed: 11 };
  const built = await preparedGolden(prep);
  const snap = built.snapshot();
  built.close();
  await record(addTag, prep, await snap.save(out, addTag, { guestName: "golden.elf" }));
  fs.rmSync(path.join(out, ".vmlet.lock"), { force: true });
  fs.writeFileSync(expectedFile, `${JSON.stringify(expected, null, 2)}\n`);
  console.log(`golden snapshot ${addTag} added to ${path.relative(root, out)}`);
  process.exit(0);
}

// 1. A sandbox built from the ELF, prepared, snapshotted.
const basicPrep = { marker: 1234, len: 3000, seed: 7 };
const sb = await preparedGolden(basicPrep);
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
fs.writeFileSync(expectedFile, `${JSON.stringify(expected, null, 2)}\n`);
console.log(`golden snapshots written to ${path.relative(root, out)}: ${Object.keys(expected).join(", ")}`);
