/**
 * A hostile or corrupt layout gives a typed error naming what is wrong: never a crash,
 * a hang or an out-of-bounds access. Each case edits a good layout (re-hashing what it
 * edits, so the digest check is not what catches it) and expects a specific error.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { SandboxBuilder, Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { guestPath } from "./helpers.js";

type Obj = Record<string, unknown>;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-validate-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let good = "";
let n = 0;

before(async () => {
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
  sb.callSync("bump");
  good = path.join(root, "good");
  await sb.snapshot().save(good, "t");
  sb.close();
});

/** A copy of the good layout to break. */
function copy(): string {
  const dir = path.join(root, `case-${n++}`);
  fs.cpSync(good, dir, { recursive: true });
  spawnSync("chmod", ["-R", "u+w", dir]);
  return dir;
}

const blob = (dir: string, digest: string): string => path.join(dir, "blobs/sha256", digest.slice(7));
const readJson = (file: string): Obj => JSON.parse(fs.readFileSync(file, "utf8")) as Obj;
function putBlob(dir: string, bytes: Buffer): { digest: string; size: number } {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  fs.writeFileSync(blob(dir, digest), bytes);
  return { digest, size: bytes.length };
}
const index = (dir: string): Obj => readJson(path.join(dir, "index.json"));
const entry = (dir: string): Obj => (index(dir).manifests as Obj[])[0]!;
const manifest = (dir: string): Obj => readJson(blob(dir, entry(dir).digest as string));
const config = (dir: string): Obj => readJson(blob(dir, (manifest(dir).config as Obj).digest as string));

/** Rewrites the manifest (and re-points the index at it). */
function editManifest(dir: string, edit: (m: Obj) => void): void {
  const m = manifest(dir);
  edit(m);
  const d = putBlob(dir, Buffer.from(JSON.stringify(m)));
  const ix = index(dir);
  (ix.manifests as Obj[])[0] = { ...entry(dir), ...d };
  fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify(ix));
}

/** Edits the config's XSAVE image (base64) in place. */
function editXsave(c: Obj, edit: (x: DataView) => void): void {
  const cpu = c.cpuState as Obj;
  const bytes = Buffer.from(cpu.xsave as string, "base64");
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  cpu.xsave = bytes.toString("base64");
}

/** Rewrites the config blob (re-hashed, re-pointed). */
function editConfig(dir: string, edit: (c: Obj) => void): void {
  const c = config(dir);
  edit(c);
  const d = putBlob(dir, Buffer.from(JSON.stringify(c)));
  editManifest(dir, (m) => Object.assign(m.config as Obj, d));
}

async function expectError(dir: string, code: string, mentions?: RegExp): Promise<void> {
  for (const load of [() => Snapshot.load(dir, "t"), () => Snapshot.checkedLoad(dir, "t")]) {
    await assert.rejects(load(), (e: unknown) => {
      assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (mentions) assert.match(e.message, mentions);
      return true;
    });
  }
}

test("the unedited copy loads (the cases below fail only because of their edit)", async () => {
  const s = await Snapshot.checkedLoad(copy(), "t");
  assert.equal(s.generation, 1);
});

describe("layout structure", () => {
  test("a missing or wrong oci-layout marker", async () => {
    const dir = copy();
    fs.writeFileSync(path.join(dir, "oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
    await expectError(dir, "SNAPSHOT_INVALID", /imageLayoutVersion/);
    fs.rmSync(path.join(dir, "oci-layout"));
    await expectError(dir, "SNAPSHOT_INVALID", /oci-layout: is missing/);
  });

  test("index.json: not JSON, wrong schema, too large, a symlink, a FIFO", async () => {
    const dir = copy();
    const file = path.join(dir, "index.json");
    fs.writeFileSync(file, "{not json");
    await expectError(dir, "SNAPSHOT_INVALID", /index\.json/);
    fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1, manifests: [] }));
    await expectError(dir, "SNAPSHOT_INVALID", /schemaVersion/);
    fs.writeFileSync(file, JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "x", digest: "sha256:abc", size: 1 }] }));
    await expectError(dir, "SNAPSHOT_INVALID", /digest/);
    fs.writeFileSync(file, " ".repeat(5 * 1024 * 1024));
    await expectError(dir, "SNAPSHOT_INVALID", /at most/);
    fs.rmSync(file);
    fs.symlinkSync(path.join(good, "index.json"), file);
    await expectError(dir, "SNAPSHOT_INVALID", /symbolic link/);
    fs.rmSync(file);
    assert.equal(spawnSync("mkfifo", [file]).status, 0);
    await expectError(dir, "SNAPSHOT_INVALID", /not a regular file/); // and no hang on open
  });

  test("blobs/sha256 as a symlink, a blob as a symlink, a missing blob", async () => {
    let dir = copy();
    fs.rmSync(path.join(dir, "blobs/sha256"), { recursive: true });
    fs.symlinkSync(path.join(good, "blobs/sha256"), path.join(dir, "blobs/sha256"));
    await expectError(dir, "SNAPSHOT_INVALID", /not a directory/);
    dir = copy();
    const memory = blob(dir, ((manifest(dir).layers as Obj[])[0]!).digest as string);
    fs.rmSync(memory);
    fs.symlinkSync("/dev/zero", memory);
    await expectError(dir, "SNAPSHOT_INVALID", /symbolic link/);
    fs.rmSync(memory);
    await expectError(dir, "SNAPSHOT_INVALID", /is missing/);
  });

  test("a manifest whose bytes do not match its digest, or whose size disagrees", async () => {
    const dir = copy();
    const file = blob(dir, entry(dir).digest as string);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, bytes.length - 1), Buffer.from(" ")]));
    await expectError(dir, "SNAPSHOT_DIGEST_MISMATCH");
    fs.writeFileSync(file, Buffer.concat([bytes, Buffer.from(" ")]));
    await expectError(dir, "SNAPSHOT_INVALID", /descriptor says/);
  });

  test("a manifest of another artifact, or with the wrong layers", async () => {
    let dir = copy();
    editManifest(dir, (m) => (m.artifactType = "application/vnd.example.other"));
    await expectError(dir, "SNAPSHOT_INVALID", /artifactType/);
    dir = copy();
    editManifest(dir, (m) => (m.layers = [(m.layers as Obj[])[0]]));
    await expectError(dir, "SNAPSHOT_INVALID", /layer/);
    dir = copy();
    editManifest(dir, (m) => ((m.config as Obj).mediaType = "application/json"));
    await expectError(dir, "SNAPSHOT_INVALID", /config\.mediaType/);
  });

  test("a memory blob shorter than its descriptor (truncated by someone)", async () => {
    const dir = copy();
    const memory = blob(dir, ((manifest(dir).layers as Obj[])[0]!).digest as string);
    fs.truncateSync(memory, 4096);
    await expectError(dir, "SNAPSHOT_INVALID", /descriptor says/);
  });

  test("a memory descriptor that disagrees with the layout's memory size", async () => {
    const dir = copy();
    editManifest(dir, (m) => (((m.layers as Obj[])[0]!).size = 4096));
    await expectError(dir, "SNAPSHOT_INVALID", /memory size/);
  });
});

describe("config values", () => {
  const cases: Array<[string, (c: Obj) => void, string, RegExp]> = [
    ["a newer format version", (c) => (c.formatVersion = 2), "SNAPSHOT_INCOMPATIBLE", /format version 2/],
    ["another ABI version", (c) => (c.abiVersion = 99), "SNAPSHOT_INCOMPATIBLE", /ABI version 99/],
    ["another architecture", (c) => (c.arch = "aarch64"), "SNAPSHOT_INCOMPATIBLE", /aarch64/],
    ["a CPU feature this machine lacks", (c) => ((c.guestCpu as Obj).features as string[]).push("amx_tile"), "CPU_INCOMPATIBLE", /amx_tile/],
    ["a memory size that disagrees with the layout", (c) => ((c.layout as Obj).memorySize = ((c.layout as Obj).memorySize as number) * 2), "SNAPSHOT_INVALID", /layout/],
    ["a buffer moved outside memory", (c) => (((c.layout as Obj).input as Obj).address = 2 ** 40), "SNAPSHOT_INVALID", /layout/],
    ["a region made executable", (c) => (((c.layout as Obj).regions as Obj[]).find((r) => r.name === "heap")!.access = "user-rx"), "SNAPSHOT_INVALID", /layout/],
    ["an unknown region access", (c) => (((c.layout as Obj).regions as Obj[])[0]!.access = "rwx"), "SNAPSHOT_INVALID", /access/],
    ["system tables elsewhere", (c) => ((c.system as Obj).pml4Address = 0x1000), "SNAPSHOT_INVALID", /system/],
    ["an entry point outside the code", (c) => {
      c.entryPoint = "0x10000";
      (c.cpuState as Obj).rip = "0x10000";
    }, "SNAPSHOT_INVALID", /rip/],
    ["an entry point that disagrees with RIP", (c) => (c.entryPoint = "0x100000"), "SNAPSHOT_INVALID", /entryPoint/],
    ["a stack pointer outside the stack", (c) => (((c.cpuState as Obj).gprs as string[])[6] = "0x10"), "SNAPSHOT_INVALID", /rsp/],
    ["a misaligned stack pointer", (c) => {
      const gprs = (c.cpuState as Obj).gprs as string[];
      gprs[6] = `0x${(BigInt(gprs[6]!) - 3n).toString(16)}`;
    }, "SNAPSHOT_INVALID", /rsp/],
    ["RFLAGS with IOPL 3", (c) => ((c.cpuState as Obj).rflags = "0x3202"), "SNAPSHOT_INVALID", /rflags/],
    ["RFLAGS without the always-one bit 1", (c) => ((c.cpuState as Obj).rflags = "0x200"), "SNAPSHOT_INVALID", /rflags/],
    ["a stack pointer one word above the stack's top, at a RIP that is not the FPU resume point", (c) => {
      const top = BigInt(((c.layout as Obj).stack as Obj).top as number);
      ((c.cpuState as Obj).gprs as string[])[6] = `0x${(top + 8n).toString(16)}`;
      c.entryPoint = "0x100000"; // elsewhere in the code: the FPU record's own RSP check does not apply
      (c.cpuState as Obj).rip = "0x100000";
    }, "SNAPSHOT_INVALID", /gprs\[rsp\]: 0x[0-9a-f]+ is not an aligned address inside the stack/],
    ["MXCSR with a reserved bit (16)", (c) => editXsave(c, (x) => x.setUint32(24, x.getUint32(24, true) | 0x10000, true)), "SNAPSHOT_INVALID", /MXCSR/],
    ["XSTATE_BV naming the AVX-512 opmask component (bit 5)", (c) => editXsave(c, (x) => x.setUint32(512, x.getUint32(512, true) | 0x20, true)), "SNAPSHOT_INVALID", /XSTATE_BV/],
    ["the XSAVE header's last reserved word set", (c) => editXsave(c, (x) => x.setUint8(575, 1)), "SNAPSHOT_INVALID", /reserved bytes/],
    ["a non-canonical FS base", (c) => ((c.cpuState as Obj).fsBase = "0x800000000000"), "SNAPSHOT_INVALID", /fsBase/],
    ["an FS base in guest memory but not at the thread pointer", (c) => ((c.cpuState as Obj).fsBase = "0x106000"), "SNAPSHOT_INVALID", /fsBase: 0x106000 is not the guest's thread pointer \(0xfe000\)/],
    ["an FS base of 0 with a thread block", (c) => ((c.cpuState as Obj).fsBase = "0x0"), "SNAPSHOT_INVALID", /fsBase/],
    ["the thread block dropped from the layout (an old layout) with a thread pointer as FS base", (c) => {
      const layout = c.layout as Obj;
      layout.regions = (layout.regions as Obj[]).filter((r) => r.name !== "thread-local storage");
    }, "SNAPSHOT_INVALID", /fsBase: 0xfe000 is not the guest's thread pointer \(0x0\)/],
    ["a thread block that grew", (c) => {
      const block = ((c.layout as Obj).regions as Obj[]).find((r) => r.name === "thread-local storage")!;
      block.start = (block.start as number) - 0x1000;
      block.size = (block.size as number) + 0x1000;
    }, "SNAPSHOT_INVALID", /layout/],
    ["a thread block that moved", (c) => {
      const block = ((c.layout as Obj).regions as Obj[]).find((r) => r.name === "thread-local storage")!;
      block.start = (block.start as number) + 0x1000;
    }, "SNAPSHOT_INVALID", /layout/],
    ["a thread block larger than its area", (c) => {
      const block = ((c.layout as Obj).regions as Obj[]).find((r) => r.name === "thread-local storage")!;
      block.start = 0;
      block.size = 0xff000;
    }, "SNAPSHOT_INVALID", /thread-local data must be 0 to/],
    ["a short XSAVE area", (c) => ((c.cpuState as Obj).xsave = Buffer.alloc(512).toString("base64")), "SNAPSHOT_INVALID", /xsave/],
    ["15 registers", (c) => ((c.cpuState as Obj).gprs as string[]).pop(), "SNAPSHOT_INVALID", /gprs/],
    ["a register that is not hex", (c) => (((c.cpuState as Obj).gprs as string[])[0] = "12"), "SNAPSHOT_INVALID", /gprs\[0\]/],
    ["a function name with a slash", (c) => (((c.functions as Obj[])[0]!).name = "a/b"), "SNAPSHOT_INVALID", /functions\[0\]\.name/],
    ["a duplicated function", (c) => (c.functions as Obj[]).push((c.functions as Obj[])[0]!), "SNAPSHOT_INVALID", /functions/],
    ["an unknown value type", (c) => (((c.hostFunctions as Obj[])[0]!).params = ["i128"]), "SNAPSHOT_INVALID", /hostFunctions\[0\]\.params\[0\]/],
    ["an unknown log level", (c) => (c.maxGuestLogLevel = "loud"), "SNAPSHOT_INVALID", /maxGuestLogLevel/],
    ["a generation of zero", (c) => (c.generation = 0), "SNAPSHOT_INVALID", /generation/],
    ["a missing layout", (c) => delete c.layout, "SNAPSHOT_INVALID", /layout/],
  ];
  for (const [name, edit, code, mentions] of cases) {
    test(`${name}: ${code}`, async () => {
      const dir = copy();
      editConfig(dir, edit);
      await expectError(dir, code, mentions);
    });
  }

  test("SnapshotLayout.verify reports the same problems without throwing", async () => {
    const dir = copy();
    editConfig(dir, (c) => (c.abiVersion = 99));
    const report = await new SnapshotLayout(dir).verify();
    assert.equal(report.ok, false);
    assert.equal(report.problems[0]?.error.code, "SNAPSHOT_INCOMPATIBLE");
  });
});

test("fuzz: random byte changes to the config and manifest give a typed error or a valid snapshot, nothing else", async () => {
  let seed = 0x1234567;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const dir = copy();
  const original = { config: config(dir), manifest: manifest(dir) };
  const outcomes = new Map<string, number>();
  for (let round = 0; round < 300; round++) {
    const target = round % 2 === 0 ? "config" : "manifest";
    const text = Buffer.from(JSON.stringify(original[target]));
    for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) text[Math.floor(random() * text.length)] = Math.floor(random() * 128);
    const d = putBlob(dir, text);
    if (target === "config") {
      const m = structuredClone(original.manifest);
      Object.assign(m.config as Obj, d);
      const md = putBlob(dir, Buffer.from(JSON.stringify(m)));
      fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({ ...index(dir), manifests: [{ ...entry(dir), ...md }] }));
    } else {
      fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({ ...index(dir), manifests: [{ ...entry(dir), ...d }] }));
    }
    try {
      await Snapshot.load(dir, "t");
      outcomes.set("loaded", (outcomes.get("loaded") ?? 0) + 1);
    } catch (error) {
      assert.ok(error instanceof VmletError, `round ${round}: ${String(error)}`);
      outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
    }
  }
  assert.ok((outcomes.get("SNAPSHOT_INVALID") ?? 0) > 100, JSON.stringify(Object.fromEntries(outcomes)));
  console.log(`fuzz outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
