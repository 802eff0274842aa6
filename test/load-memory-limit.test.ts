/**
 * The loader, not the snapshot, decides how much guest memory a load may bring: a
 * snapshot above `maxMemorySize` (default 4 GiB) is SNAPSHOT_TOO_LARGE before anything is
 * mapped, the bound is exact, and the option itself is validated (INVALID_CONFIG naming it).
 * The CLI's `run --max-memory` passes it through. Needs no KVM: every refusal happens
 * before the CPU check, and "accepted" is asserted as "not refused for its size".
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { DEFAULT_MAX_MEMORY_SIZE, Snapshot, SnapshotTooLargeError, VmletError } from "../src/index.js";
import { computeLayout, type MemoryLayout } from "../src/mem/layout.js";
import { systemSetup } from "../src/mem/system-tables.js";
import { configText, copyGolden, GOLDEN, GOLDEN_MEMORY_SIZE, jsonErrorCode, manifestText, putBlob, replaceManifest, TAG, vmlet, type Obj } from "./layout-copies.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-memlimit-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const PAGE = 4096;
const GIB = 1024 * 1024 * 1024;

/** The error code a load ends with, or "loaded". */
async function outcome(load: Promise<Snapshot>): Promise<string> {
  return load.then(
    () => "loaded",
    (e: unknown) => (e instanceof VmletError ? e.code : `untyped ${String(e)}`),
  );
}

/**
 * A golden copy whose snapshot claims `heapSize` bytes of heap: a config that passes every
 * structural check (layout recomputed, system tables and RSP moved with it) and a manifest
 * whose memory layer has the new size. The memory blob itself is not grown: a loader that
 * does not refuse by size fails later, on the blob's size or the CPU check.
 */
function layoutWithHeap(heapSize: number): { dir: string; memorySize: number } {
  const dir = copyGolden(root);
  const config = JSON.parse(configText(dir)) as Obj & { layout: MemoryLayout; cpuState: { gprs: string[] } };
  const old = config.layout;
  const layout = computeLayout({
    image: old.regions.filter((r) => r.name.startsWith("image segment")).map((r) => ({ start: r.start, size: r.size, access: r.access })),
    imageEnd: old.input.address - PAGE,
    inputSize: old.input.size,
    outputSize: old.output.size,
    heapSize,
    stackSize: old.stack.top - old.stack.bottom,
  });
  const rsp = BigInt(config.cpuState.gprs[6]!) + BigInt(layout.stack.bottom - old.stack.bottom);
  config.cpuState.gprs[6] = `0x${rsp.toString(16)}`;
  const edited = { ...config, layout, system: systemSetup(layout.pageTables.address) };
  const manifest = JSON.parse(manifestText(dir)) as { config: Obj; layers: Obj[] };
  Object.assign(manifest.config, putBlob(dir, JSON.stringify(edited)));
  manifest.layers[0]!.size = layout.memorySize;
  replaceManifest(dir, JSON.stringify(manifest));
  return { dir, memorySize: layout.memorySize };
}

describe("maxMemorySize", () => {
  test("the default is 4 GiB, and a snapshot above it is refused by load and checkedLoad", async () => {
    assert.equal(DEFAULT_MAX_MEMORY_SIZE, 4 * GIB);
    const { dir, memorySize } = layoutWithHeap(5 * GIB);
    assert.ok(memorySize > DEFAULT_MAX_MEMORY_SIZE);
    for (const load of [Snapshot.load(dir, TAG), Snapshot.checkedLoad(dir, TAG)]) {
      await assert.rejects(load, (e: unknown) => {
        assert.ok(e instanceof SnapshotTooLargeError, String(e));
        assert.equal(e.code, "SNAPSHOT_TOO_LARGE");
        assert.equal(e.memorySize, memorySize);
        assert.equal(e.maxMemorySize, DEFAULT_MAX_MEMORY_SIZE);
        assert.match(e.message, /maxMemorySize/);
        return true;
      });
    }
    assert.notEqual(await outcome(Snapshot.load(dir, TAG, { maxMemorySize: 8 * GIB })), "SNAPSHOT_TOO_LARGE", "a larger limit lets it past the size check");
  });

  test("the bound is exact: the snapshot's size passes, one byte less is refused", async () => {
    assert.notEqual(await outcome(Snapshot.load(GOLDEN, TAG, { maxMemorySize: GOLDEN_MEMORY_SIZE })), "SNAPSHOT_TOO_LARGE");
    assert.notEqual(await outcome(Snapshot.checkedLoad(GOLDEN, TAG, { maxMemorySize: GOLDEN_MEMORY_SIZE })), "SNAPSHOT_TOO_LARGE");
    assert.equal(await outcome(Snapshot.load(GOLDEN, TAG, { maxMemorySize: GOLDEN_MEMORY_SIZE - 1 })), "SNAPSHOT_TOO_LARGE");
    assert.equal(await outcome(Snapshot.checkedLoad(GOLDEN, TAG, { maxMemorySize: GOLDEN_MEMORY_SIZE - 1 })), "SNAPSHOT_TOO_LARGE");
  });

  test("NaN, negative, zero, fractional, infinite or non-number values are INVALID_CONFIG naming the option", async () => {
    for (const bad of [Number.NaN, -1, 0, 1.5, Number.POSITIVE_INFINITY, 2 ** 53, "4G", null]) {
      for (const load of [Snapshot.load(GOLDEN, TAG, { maxMemorySize: bad as number }), Snapshot.checkedLoad(GOLDEN, TAG, { maxMemorySize: bad as number })]) {
        await assert.rejects(load, (e: unknown) => e instanceof VmletError && e.code === "INVALID_CONFIG" && /maxMemorySize/.test(e.message), String(bad));
      }
    }
  });
});

describe("vmlet run --max-memory", () => {
  test("a snapshot above the limit exits 1 with SNAPSHOT_TOO_LARGE; the default limit applies without the flag", () => {
    const small = vmlet(["run", `${GOLDEN}:${TAG}`, "f", "--max-memory", "1M", "--json"]);
    assert.equal(small.status, 1, small.stderr);
    assert.equal(jsonErrorCode(small), "SNAPSHOT_TOO_LARGE");
    const { dir } = layoutWithHeap(5 * GIB);
    const big = vmlet(["run", `${dir}:${TAG}`, "f", "--json"]);
    assert.equal(big.status, 1, big.stderr);
    assert.equal(jsonErrorCode(big), "SNAPSHOT_TOO_LARGE");
    const raised = vmlet(["run", `${dir}:${TAG}`, "f", "--max-memory", "8G", "--json"]);
    assert.notEqual(jsonErrorCode(raised), "SNAPSHOT_TOO_LARGE");
  });

  test("a malformed or zero --max-memory is a usage error (exit 2)", () => {
    for (const [bad, why] of [["0", /--max-memory must be more than 0/], ["abc", /--max-memory "abc" is not a size/], ["-1", /is not a size/], ["1.5G", /is not a size/]] as const) {
      const r = vmlet(["run", `${GOLDEN}:${TAG}`, "f", "--max-memory", bad]);
      assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
  });
});
