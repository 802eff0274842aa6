/**
 * A closed sandbox's VM is kept and reused for the next sandbox of the same snapshot
 * (src/sandbox/parked-vms.ts). Reuse must be indistinguishable from a new VM: the new
 * sandbox starts in exactly the snapshot's state whatever the last guest did.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { backendInfo, Sandbox, Snapshot, type GuestLogRecord } from "../src/index.js";
import { parkedVmStats } from "../src/sandbox/parked-vms.js";
import { setProcessRestoreMode } from "../src/hypervisor/process/process-machine.js";
import { guestPath, repoRoot } from "./helpers.js";
import { addOne, assertPreparedState, prepared } from "./snapshot-guest.js";

const onProcess = backendInfo().name === "process";
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-parked-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("a reused VM starts in the snapshot's state: memory, FPU control state, host functions and log level of its own config", async () => {
  const { sb, snap } = await prepared();
  sb.close();
  for (let round = 0; round < 4; round++) {
    const before = parkedVmStats().reused;
    const records: GuestLogRecord[] = [];
    const copy = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne], maxGuestLogLevel: round % 2 ? "debug" : "error", guestLogger: (r) => records.push(r) });
    if (round > 0) assert.equal(parkedVmStats().reused, before + 1, `round ${round}: the last round's VM was reused`);
    assertPreparedState(copy);
    assert.equal(copy.callSync("call_host", 1), 2);
    copy.callSync("log_at", 4);
    assert.equal(records.length, round % 2 ? 1 : 0, "the log level of this sandbox's config, not the last one's");
    // Leave everything different for the next round.
    copy.callSync("bump");
    copy.callSync("set_value", -7.5);
    copy.callSync("heap_fill", 50_000, 99);
    copy.callSync("set_rounding", 3);
    copy.callSync("touch_pages", 64, 0x5a);
    copy.close();
  }
});

// On the process backend a reset through the write log and one that compares pages; KVM has one way.
for (const mode of onProcess ? (["log", "compare"] as const) : (["auto"] as const)) {
test(`a reused VM's memory is the snapshot's image byte for byte, whatever the last guest and the host wrote (restores: ${mode})`, async () => {
  setProcessRestoreMode(mode);
  const { sb, snap } = await prepared();
  sb.close();
  const last = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  last.callSync("heap_fill", 50_000, 99); // guest pages, and the host's call message and result
  last.callSync("touch_pages", 64, 0x5a);
  last.callSync("bump");
  last.close();
  const before = parkedVmStats().reused;
  const next = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  try {
    assert.equal(parkedVmStats().reused, before + 1, "the last sandbox's VM was reused");
    const { memory, layout } = (next as unknown as { parts: { memory: { bytes: Uint8Array }; layout: { controlBlock: number } } }).parts;
    const image = snap.image.view;
    const hostFieldsPage = Math.floor(layout.controlBlock / 4096); // fromSnapshot writes this sandbox's own host fields there
    const differing: number[] = [];
    for (let page = 0; page < image.byteLength / 4096; page++) {
      if (page === hostFieldsPage) continue;
      const at = page * 4096;
      if (Buffer.compare(memory.bytes.subarray(at, at + 4096), image.subarray(at, at + 4096)) !== 0) differing.push(page);
    }
    assert.deepEqual(differing, [], "pages that differ from the image");
    assertPreparedState(next);
  } finally {
    next.close();
    setProcessRestoreMode("auto");
  }
});
}

test("a reused VM is reset by a restore: the child keeps mapping the pages the last guest read (process backend)", { skip: onProcess ? false : "the process backend's child" }, async () => {
  const { sb } = await prepared(8 << 20);
  sb.callSync("heap_fill", 4 << 20, 3);
  const filled = sb.snapshot();
  sb.close();
  const pidOf = (s: Sandbox): number => (s as unknown as { vm: { childPid: number } }).vm.childPid;
  const rssKiB = (pid: number): number => Number(/^Rss:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"))![1]);
  const reader = await Sandbox.fromSnapshot(filled, { hostFunctions: [addOne] });
  assert.equal(reader.callSync("heap_check", 3), true); // the guest reads 4 MiB of heap
  const pid = pidOf(reader);
  assert.ok(rssKiB(pid) >= 4096, `the child maps what it read (${rssKiB(pid)} KiB)`);
  reader.close();
  const next = await Sandbox.fromSnapshot(filled, { hostFunctions: [addOne] });
  try {
    assert.equal(pidOf(next), pid, "the same child serves the next sandbox");
    assert.ok(rssKiB(pid) >= 4096, `the reset left the child's mappings of the unchanged pages (${rssKiB(pid)} KiB mapped)`);
    assert.equal(next.callSync("heap_check", 3), true);
  } finally {
    next.close();
  }
});

test("a poisoned sandbox's VM is not kept; a VM is not reused for a snapshot with other contents", async () => {
  const { sb, snap } = await prepared();
  sb.callSync("bump");
  const other = sb.snapshot(); // same size and lineage, other contents; sb stays open (closed, it would be parked for `other`)
  const first = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  assert.throws(() => first.callSync("null_write"), (e: unknown) => (e as { code?: string }).code === "GUEST_FAULT");
  first.close();
  const reusedBefore = parkedVmStats().reused;
  const second = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  assert.equal(parkedVmStats().reused, reusedBefore, "the poisoned VM was destroyed, not kept");
  second.close();
  const third = await Sandbox.fromSnapshot(other, { hostFunctions: [addOne] });
  assert.equal(parkedVmStats().reused, reusedBefore, "a VM of `snap` is not used for `other`");
  assert.equal(third.callSync("get_counter"), 4);
  third.close();
  const fourth = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  assert.equal(parkedVmStats().reused, reusedBefore + 1, "but it is for `snap` again");
  assertPreparedState(fourth);
  fourth.close();
  sb.close();
});

test("snapshots loaded twice from disk share parked VMs (same blob digest)", async () => {
  const { sb, snap } = await prepared();
  sb.close();
  await snap.save(root, "t");
  const a = await Sandbox.fromSnapshot(await Snapshot.load(root, "t"), { hostFunctions: [addOne] });
  a.callSync("bump");
  a.close();
  const before = parkedVmStats().reused;
  const b = await Sandbox.fromSnapshot(await Snapshot.load(root, "t"), { hostFunctions: [addOne] });
  assert.equal(parkedVmStats().reused, before + 1);
  assertPreparedState(b);
  b.close();
});

test("layered snapshots loaded from disk share parked VMs too (same top layer digest); other chains do not", async () => {
  const { sb, snap } = await prepared();
  await snap.save(root, "base");
  sb.callSync("bump");
  await sb.snapshot().save(root, "over", { base: "base" });
  sb.callSync("bump");
  await sb.snapshot().save(root, "over2", { base: "over" });
  sb.close(); // parked as the memory saved as "over2"
  const counterOf = async (tag: string): Promise<number> => {
    const probe = await Sandbox.fromSnapshot(await Snapshot.load(root, tag), { hostFunctions: [addOne] });
    try {
      return probe.callSync("get_counter") as number;
    } finally {
      probe.close();
    }
  };
  let before = parkedVmStats().reused;
  const over2 = await counterOf("over2");
  assert.equal(parkedVmStats().reused, before + 1, "loaded, the chain the closed sandbox saved reuses its VM");
  before = parkedVmStats().reused;
  const over = await counterOf("over");
  assert.equal(parkedVmStats().reused, before, "a chain with another top layer is other contents: a new VM");
  assert.equal(over2, over + 1, "each sandbox ran its own snapshot's state");
  before = parkedVmStats().reused;
  assert.equal(await counterOf("over"), over, "the same chain loaded again: the snapshot's state, not the last guest's");
  assert.equal(parkedVmStats().reused, before + 1, "and its parked VM");
});

test("at most a few VMs stay parked", async () => {
  const { sb, snap } = await prepared();
  sb.close();
  const many = await Promise.all(Array.from({ length: 8 }, () => Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] })));
  for (const s of many) s.close();
  assert.ok(parkedVmStats().parked <= 4, `${parkedVmStats().parked} parked`);
});

test("a process exits cleanly with parked VMs whose vCPU threads ran async calls, and with an open sandbox mid-call", () => {
  const index = path.join(repoRoot, "dist/src/index.js");
  const script = `
    const { SandboxBuilder, Sandbox } = await import(${JSON.stringify(index)});
    const b = await new SandboxBuilder().guest(${JSON.stringify(guestPath("snapshot"))}).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
    const snap = b.snapshot();
    b.close();
    const hf = [{ name: "host_add_one", params: ["i32"], returns: "i32", impl: (x) => x + 1 }];
    for (let i = 0; i < 3; i++) { const s = await Sandbox.fromSnapshot(snap, { hostFunctions: hf }); await s.call("bump"); s.close(); }
    const busy = await Sandbox.fromSnapshot(snap, { hostFunctions: hf });
    busy.call("spin_forever").catch(() => {});
    setTimeout(() => { console.log("exiting"); process.exit(0); }, 50);
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  assert.equal(child.signal, null, `killed by ${child.signal}: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /exiting/);
});
