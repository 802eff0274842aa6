/**
 * The process backend reuses a closed sandbox's guest memory file and control memfd
 * (src/mem/guest-memory.ts, process-machine.ts) to spare a new sandbox the mapping and
 * V8's GC of it: only after its child is reaped, and only emptied, so that nothing of
 * the last guest reaches the next one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { SandboxBuilder, type Sandbox } from "../src/index.js";
import { sharedSparesSettled } from "../src/mem/guest-memory.js";
import { takeEmptied } from "../src/mem/spare-files.js";
import { guestPath } from "./helpers.js";

const build = (): Promise<Sandbox> => new SandboxBuilder().guest(guestPath("snapshot")).backend("process").build();
const machineOf = (sb: Sandbox): ProcessMachine => (sb as unknown as { vm: ProcessMachine }).vm;
const controlOf = (sb: Sandbox): ArrayBuffer => (machineOf(sb) as unknown as { control: ArrayBuffer }).control;
const heapOf = (sb: Sandbox): Uint8Array => {
  const { heap } = (sb as unknown as { parts: { layout: { heap: { address: number; size: number } } } }).parts.layout;
  return machineOf(sb).memory.subarray(heap.address, heap.address + heap.size);
};
const nonZero = (bytes: Uint8Array): number => bytes.reduce((n, b) => n + (b !== 0 ? 1 : 0), 0);

test("a closed sandbox's memory and control files serve the next sandbox of its size, empty", async () => {
  const first = await build();
  const memory = machineOf(first).memory.buffer, control = controlOf(first);
  assert.equal(first.callSync("heap_fill", 512 * 1024, 0x11), true);
  const used = nonZero(heapOf(first));
  assert.ok(used > 500 * 1024, `the first guest filled its heap (${used} bytes)`);
  first.close();
  await sharedSparesSettled(); // the child's death and the emptying happen on a background thread

  const second = await build();
  try {
    assert.equal(machineOf(second).memory.buffer, memory, "the same mapping serves the next sandbox");
    assert.equal(controlOf(second), control, "and the same control memfd");
    assert.ok(nonZero(heapOf(second)) < 4096, `none of the first guest's heap (${nonZero(heapOf(second))} bytes are not zero)`);
    assert.equal(second.callSync("heap_check", 0x11), false);
  } finally {
    second.close();
  }
});

test("a spare still being emptied is passed over, one that could not be emptied is dropped and closed", () => {
  const closed: number[] = [];
  const addon = { closeFd: (fd: number) => void closed.push(fd) } as unknown as Parameters<typeof takeEmptied>[0];
  const spare = (fd: number, state: number) => ({ fd, emptied: () => state });
  const list = [spare(10, 1), spare(11, 0), spare(12, -1), spare(13, 0)];
  assert.equal(takeEmptied(addon, list)?.fd, 10, "the emptied one, past pending and failed ones");
  assert.deepEqual(closed, [12], "the failed one is closed");
  assert.deepEqual(list.map((s) => s.fd), [11, 13], "pending ones stay");
  assert.equal(takeEmptied(addon, list), undefined, "nothing while they are pending");
});
