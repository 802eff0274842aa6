/**
 * The child process of the cold-start rows (bench/cold-start-measure.ts, and
 * bench/disk-snapshot-measure.ts): a fresh Node process that imports vmlet as a user's
 * `import "vmlet"` does (the bundle dist/pkg/index.js), makes one sandbox, makes one call,
 * prints the result and exits. The parent times it from spawn to the printed result and to exit.
 *
 *   node dist/bench/cold-start-child.js snapshot DIR TAG   # Snapshot.load + Sandbox.fromSnapshot
 *   node dist/bench/cold-start-child.js elf ELF HEAP_BYTES # SandboxBuilder().guest(ELF).build()
 *
 * Prints one JSON line: the call's result and the child's own timestamps (performance.now(),
 * ms since the process started): after the import, after load / build, after the call.
 */
const mode = process.argv[2];
const tImport0 = performance.now();
const { Sandbox, SandboxBuilder, Snapshot } = (await import(new URL("../pkg/index.js", import.meta.url).href)) as typeof import("../src/index.js");
const tImport = performance.now();

const addOne = (x: number): number => x + 1;
let tLoad = Number.NaN;
let sb;
if (mode === "snapshot") {
  const snap = await Snapshot.load(process.argv[3]!, process.argv[4]!);
  tLoad = performance.now();
  sb = await Sandbox.fromSnapshot(snap, {
    hostFunctions: [{ name: "host_add_one", params: ["i32"], returns: "i32", impl: addOne } as never],
  });
} else if (mode === "elf") {
  sb = await new SandboxBuilder()
    .guest(process.argv[3]!)
    .heapSize(Number(process.argv[4]))
    .hostFunction("host_add_one", ["i32"], "i32", addOne)
    .maxGuestLogLevel("warn")
    .build();
} else {
  throw new Error(`usage: cold-start-child.js snapshot DIR TAG | elf ELF HEAP_BYTES (got "${String(mode)}")`);
}
const tReady = performance.now();
const result = sb.callSync("get_counter");
const tCall = performance.now();
process.stdout.write(JSON.stringify({ result, t: { importStart: tImport0, import: tImport, load: tLoad, ready: tReady, call: tCall } }) + "\n");
sb.close();
