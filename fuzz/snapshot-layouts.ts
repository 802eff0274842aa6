/**
 * Fuzzer (c): snapshot layouts. Each input is a copy of the committed golden layout
 * (test/golden/snapshots) with one to three edits (layout-edits.ts): JSON values replaced
 * by other types, numbers near limits, deep nesting and huge strings, keys deleted or
 * added; bytes flipped, blobs truncated, extended or removed; memory blob bytes changed in
 * the supervisor pages, page tables, control block, stack and code; each with digests fixed
 * up or left stale. Then Snapshot.load, checkedLoad, SnapshotLayout.verify, or load +
 * Sandbox.fromSnapshot + calls, and now and then the memory blob truncated after load.
 * Every outcome must be a result or a VmletError (verify's problems included).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { VmletError } from "../src/errors/errors.js";
import type { HostFunctionDefinition } from "../src/sandbox/host-functions.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { Sandbox } from "../src/sandbox/sandbox.js";
import { SnapshotLayout } from "../src/snapshot/file/layout-tools.js";
import { Snapshot } from "../src/snapshot/snapshot.js";
import type { FuzzTarget } from "./harness.js";
import { applyEdit, cloneFiles, digestsOf, type Edit, type Json, type JsonValue, type LayoutFiles, type Target } from "./layout-edits.js";
import type { Prng } from "./prng.js";
import { outcomeOf, repoRoot } from "./sandboxes.js";

const GOLDEN = path.join(repoRoot, "test/golden/snapshots");
const TAGS = ["basic-v1", "second-generation-v1", "xsave-resume-v1"];
const OPS = ["load", "checkedLoad", "verify", "run", "truncateAfterLoad"] as const;
const MEMORY_SIZE = 2 * 1024 * 1024;
const CALL_TIMEOUT_MS = 2000;
/** The golden guest's host functions (tests/golden-snapshots.test.ts): a superset of every tag's. */
const HOST_FUNCTIONS = [
  { name: "golden_twice", params: ["i32"], returns: "i32", impl: (x: number) => 2 * x },
  { name: "golden_extra", params: [], returns: "void", impl: () => undefined },
] as unknown as HostFunctionDefinition[];

export interface LayoutInput {
  readonly op: (typeof OPS)[number];
  readonly tag: string;
  readonly edits: readonly Edit[];
}

export async function snapshotLayoutsTarget(): Promise<FuzzTarget<LayoutInput>> {
  const pristine = readLayout(GOLDEN);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-fuzz-layouts-"));
  const dir = path.join(root, "layout");
  const disk = new LayoutOnDisk(dir);
  const pristineJson = new Map<string, Json>();
  for (const tag of TAGS) {
    const d = digestsOf(pristine, tag);
    for (const t of ["manifest", "config"] as const) pristineJson.set(`${tag}/${t}`, JSON.parse(pristine.blobs.get(d[t]!)!.toString("utf8")) as Json);
  }
  pristineJson.set("index", JSON.parse(pristine.index.toString("utf8")) as Json);
  return {
    name: "snapshot-layouts",
    generate: (rng) => generate(rng, pristineJson),
    async run(input) {
      const files = cloneFiles(pristine);
      for (const edit of input.edits) applyEdit(files, edit);
      disk.write(files);
      try {
        return await runOp(dir, input, files);
      } catch (error) {
        return outcomeOf(error);
      } finally {
        if (input.op === "truncateAfterLoad") disk.forget(digestsOf(files, input.tag).memory);
      }
    },
    shrink,
    describe: (i) => `${i.op} of "${i.tag}" after ${i.edits.map(describeEdit).join("; ") || "no edits"}`,
    recover: async () => undefined, // every input starts from its own copy of the files
    close: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

async function runOp(dir: string, input: LayoutInput, files: LayoutFiles): Promise<string> {
  switch (input.op) {
    case "load":
      await Snapshot.load(dir, input.tag);
      return "loaded";
    case "checkedLoad":
      await Snapshot.checkedLoad(dir, input.tag);
      return "loaded";
    case "verify": {
      const report = await new SnapshotLayout(dir).verify();
      const untyped = report.problems.find((p) => !((p.error as unknown) instanceof VmletError));
      if (untyped) throw untyped.error;
      return report.ok ? "verified" : "problems";
    }
    case "run":
      await runGuest(await Snapshot.load(dir, input.tag));
      return "ran";
    case "truncateAfterLoad": {
      // Issue 11 item 8: a blob truncated under a loaded snapshot must not kill the host. Two
      // ways still do (SIGBUS; reported, not fixed here): a parked VM of the same digest reused
      // by fromSnapshot, and restore() copying from the image. Parking is off for this op and
      // it never restores, so the fuzzer covers the rest instead of dying on those.
      const snapshot = await Snapshot.load(dir, input.tag);
      const memory = digestsOf(files, input.tag).memory;
      setVmParking(false);
      try {
        if (memory !== undefined) fs.truncateSync(path.join(dir, "blobs/sha256", memory), 4096);
        await runGuest(snapshot);
      } finally {
        setVmParking(true);
      }
      return "ran";
    }
  }
}

async function runGuest(snapshot: Snapshot): Promise<void> {
  const sandbox = await Sandbox.fromSnapshot(snapshot, { hostFunctions: HOST_FUNCTIONS, timeoutMs: CALL_TIMEOUT_MS });
  try {
    sandbox.callSync("get_marker");
    sandbox.callSync("host_round_trip", 5);
    await sandbox.call("pattern_hash");
  } finally {
    sandbox.close();
  }
}

function readLayout(dir: string): LayoutFiles {
  const blobs = new Map<string, Buffer>();
  for (const name of fs.readdirSync(path.join(dir, "blobs/sha256"))) blobs.set(name, fs.readFileSync(path.join(dir, "blobs/sha256", name)));
  return { index: fs.readFileSync(path.join(dir, "index.json")), blobs };
}

/**
 * The layout directory, rewritten per input with only the files that differ. Each file is
 * written under a temporary name and renamed: a snapshot loaded earlier (or a parked VM)
 * keeps its own inode, so one input's files never change under another's mapping.
 */
class LayoutOnDisk {
  private written: LayoutFiles | undefined;
  private readonly blobDir: string;

  constructor(private readonly dir: string) {
    this.blobDir = path.join(dir, "blobs/sha256");
    fs.mkdirSync(this.blobDir, { recursive: true });
    fs.writeFileSync(path.join(dir, "oci-layout"), fs.readFileSync(path.join(GOLDEN, "oci-layout")));
  }

  write(files: LayoutFiles): void {
    const before = this.written;
    if (before?.index !== files.index) this.put(path.join(this.dir, "index.json"), files.index);
    for (const [hex, bytes] of files.blobs) if (before?.blobs.get(hex) !== bytes) this.put(path.join(this.blobDir, hex), bytes);
    for (const hex of before?.blobs.keys() ?? []) if (!files.blobs.has(hex)) fs.rmSync(path.join(this.blobDir, hex), { force: true });
    this.written = cloneFiles(files);
  }

  /** A blob changed behind this writer's back (truncated in place): the next write() puts it back. */
  forget(hex: string | undefined): void {
    if (hex !== undefined) this.written?.blobs.delete(hex);
  }

  private put(file: string, bytes: Buffer): void {
    fs.writeFileSync(`${file}.tmp`, bytes);
    fs.renameSync(`${file}.tmp`, file);
  }
}

// ---- generation ----

function generate(rng: Prng, pristine: Map<string, Json>): LayoutInput {
  const tag = rng.chance(0.7) ? TAGS[0]! : rng.pick(TAGS);
  const op = rng.chance(0.03) ? "truncateAfterLoad" : rng.pick(["load", "load", "load", "checkedLoad", "checkedLoad", "verify", "run"] as const);
  const edits: Edit[] = [];
  for (let n = rng.chance(0.6) ? 1 : rng.range(2, 3); n > 0; n--) edits.push(edit(rng, tag, pristine));
  return { op, tag, edits };
}

function edit(rng: Prng, tag: string, pristine: Map<string, Json>): Edit {
  const target = rng.pick<Target>(["config", "config", "config", "manifest", "manifest", "index", "memory", "memory", "memory", "elf"]);
  const fixDigests = rng.chance(0.7);
  const roll = rng.float();
  if (roll < 0.04) return { target, tag, fixDigests, change: { kind: "remove" } };
  if (target === "memory" || target === "elf") {
    if (roll < 0.15) return { target, tag, fixDigests, change: { kind: "resize", length: resizeTo(rng, target === "memory" ? MEMORY_SIZE : 101312) } };
    return { target, tag, fixDigests, change: { kind: "bytes", at: target === "memory" ? memoryAddress(rng) : rng.below(101312), bytes: bytesToWrite(rng) } };
  }
  if (roll < 0.12) return { target, tag, fixDigests, change: { kind: "bytes", at: rng.below(target === "config" ? 8000 : 900), bytes: [...rng.bytes(rng.range(1, 4))] } };
  if (roll < 0.2) return { target, tag, fixDigests, change: { kind: "resize", length: resizeTo(rng, target === "config" ? 7872 : 857) } };
  const json = pristine.get(target === "index" ? "index" : `${tag}/${target}`)!;
  const { path: at, value } = randomPath(rng, json);
  const action = rng.chance(0.7) ? "set" : rng.pick(["delete", "add"] as const);
  return { target, tag, fixDigests, change: { kind: "json", path: at, action, value: replacement(rng, value) } };
}

function resizeTo(rng: Prng, size: number): number {
  return Math.max(0, rng.pick([0, 1, size - 4096, size - 1, size + 1, size + 4096, Math.floor(size / 2), rng.below(size)]));
}

/** Where guest memory is worth breaking: supervisor pages (GDT/TSS, IDT, stubs, ring-0 stacks), page tables, control block, the saved FPU area, code. */
function memoryAddress(rng: Prng): number {
  switch (rng.below(8)) {
    case 0: return 0x1000 + rng.below(0x9000); // GDT, TSS, IDT, fault stubs, ring-0 and IST stacks
    case 1: return 0x2000 + 16 * rng.below(32) + rng.pick([0, 4, 8]); // an IDT gate
    case 2: return 0x3000 + rng.below(0x200); // the fault stubs
    case 3: return 0x14a000 + 8 * rng.below(2048); // a page-table entry
    case 4: return 0x10000 + rng.pick([0, 4, 8, 0x10, 0x14, 0x18, 0x20, 0x28, 0x30, 0x34, 0x48, 0x50, 0x54]); // a control block field
    case 5: return 0x149000 + rng.below(0x1000); // the top of the stack: the saved FPU area
    case 6: return 0x100000 + rng.below(0x4000); // code
    default: return rng.below(MEMORY_SIZE);
  }
}

function bytesToWrite(rng: Prng): number[] {
  switch (rng.below(4)) {
    case 0: return [0, 0, 0, 0, 0, 0, 0, 0];
    case 1: return [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    case 2: {
      const entry = BigInt(rng.below(MEMORY_SIZE / 4096) * 4096) | BigInt(rng.pick([0x7, 0x3, 0x87, 0x1, 0x5]));
      return [...Buffer.from(new BigUint64Array([entry]).buffer)]; // a plausible page-table entry or gate address
    }
    default: return [...rng.bytes(rng.range(1, 16))];
  }
}

/** A random node of `json` (the root included) and its value. */
function randomPath(rng: Prng, json: Json): { path: (string | number)[]; value: Json } {
  const at: (string | number)[] = [];
  let node = json;
  while (typeof node === "object" && node !== null && rng.chance(0.75)) {
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    const key = rng.pick(keys);
    at.push(key);
    node = Array.isArray(node) ? node[key as number]! : (node as Record<string, Json>)[key as string]!;
  }
  return { path: at, value: node };
}

/** A value for the node: often one near the original's kind (numbers near limits, hex strings past 64 bits), else anything. */
function replacement(rng: Prng, original: Json): JsonValue {
  if (typeof original === "number" && rng.chance(0.6)) {
    return rng.pick<JsonValue>([
      { name: "number", n: original + 1 }, { name: "number", n: original - 1 }, { name: "number", n: -1 }, { name: "number", n: 2 ** 31 },
      { name: "number", n: 2 ** 32 }, { name: "number", n: 2 ** 53 + 2 }, { name: "bigNumber", n: 20 }, { name: "bigNumber", n: 400 },
      { name: "0.5" }, { name: "-0" }, { name: "1e308" }, { name: "number", n: original * 4096 },
    ]);
  }
  if (typeof original === "string" && rng.chance(0.6)) {
    return rng.pick<JsonValue>([
      { name: "hexString", n: 0 }, { name: "hexString", n: 2 ** 53 }, { name: "hugeHex", n: 17 }, { name: "hugeHex", n: 64 }, { name: "digestLike", n: 63 },
      { name: "digestLike", n: 64 }, { name: "pathLike", n: 3 }, { name: "hugeString", n: rng.chance(0.1) ? 1 << 20 : 300 }, { name: '""' }, { name: '"\\u0000"' },
    ]);
  }
  return rng.pick<JsonValue>([
    { name: "null" }, { name: "true" }, { name: "[]" }, { name: "{}" }, { name: "0" }, { name: '"x"' }, { name: "NaN" }, { name: "[1,]" }, { name: '{"__proto__":{"x":1}}' },
    { name: "deepArray", n: 31 }, { name: "deepArray", n: 33 }, { name: "deepArray", n: 10_000 }, { name: "deepObject", n: 40 }, { name: "hugeString", n: 1 << 20 },
  ]);
}

// ---- shrinking and printing ----

function* shrink(input: LayoutInput): Iterable<LayoutInput> {
  if (input.op !== "load") yield { ...input, op: "load" };
  for (let i = 0; i < input.edits.length && input.edits.length > 1; i++) yield { ...input, edits: input.edits.filter((_, j) => j !== i) };
  for (let i = 0; i < input.edits.length; i++) {
    const e = input.edits[i]!;
    if (!e.fixDigests) yield { ...input, edits: input.edits.map((x, j) => (j === i ? { ...x, fixDigests: true } : x)) };
  }
}

function describeEdit(e: Edit): string {
  const c = e.change;
  const what =
    c.kind === "json" ? `${c.action} ${JSON.stringify(c.path)}${c.value ? ` = ${c.value.name}${c.value.n === undefined ? "" : `(${c.value.n})`}` : ""}`
    : c.kind === "bytes" ? `bytes at 0x${c.at.toString(16)} = ${Buffer.from(c.bytes).toString("hex")}`
    : c.kind === "resize" ? `resize to ${c.length}`
    : "remove";
  return `${e.target}${e.target === "index" ? "" : ` of ${e.tag}`}: ${what} (digests ${e.fixDigests ? "fixed up" : "stale"})`;
}
