/**
 * A deadline's interrupt signal can reach a process-backend child after its exit was posted
 * (the host's deadline and the guest's exit cross), or someone else can send one. The parked
 * child has every signal blocked, so it stays pending until the next resume, when the host
 * has cleared the interrupt word: it must change nothing. The exit record keeps the guest's
 * registers, and the next calls run from the guest's own state.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { test } from "node:test";
import { backendInfo, SandboxBuilder, type Sandbox } from "../src/index.js";
import { MB } from "../src/hypervisor/process/mailbox.js";
import type { ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { guestPath } from "./helpers.js";

const skip = backendInfo().name === "process" ? false : "the process backend's interrupt signal (this run uses another backend)";
if (skip) console.log(`# skipped: ${skip}`);

const INTERRUPT_SIGNAL = "SIGUSR2"; // MB_INTERRUPT_SIGNAL in native/process/mailbox.h

function internals(sb: Sandbox): { mailbox: DataView; pid: number } {
  const vm = (sb as unknown as { vm: ProcessMachine }).vm;
  return { mailbox: (vm as unknown as { mailbox: DataView }).mailbox, pid: vm.childPid! };
}

/** Whether `signal` (a number) is pending for the process, blocked. */
function pending(pid: number, signal: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const bit = 1n << BigInt(signal - 1);
  return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]}`) & bit) !== 0n);
}

test("an interrupt that reaches a parked child, with the interrupt word still set, posts nothing and the next calls run on", { skip }, async () => {
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).backend("process").build();
  try {
    assert.equal(sb.callSync("bump"), 1);
    const { mailbox, pid } = internals(sb);
    const exitsOf = (fn: () => unknown): number => {
      const before = sb.stats().exits;
      fn();
      return sb.stats().exits - before;
    };
    const plainExits = exitsOf(() => sb.callSync("get_counter"));
    for (let round = 0; round < 3; round++) {
      const exits = mailbox.getBigUint64(MB.exits, true);
      const regs = Buffer.from(new Uint8Array(mailbox.buffer, mailbox.byteOffset + MB.regs, 18 * 8));
      mailbox.setInt32(MB.interrupt, 1, true); // as a deadline leaves it when the exit wins the race
      process.kill(pid, INTERRUPT_SIGNAL);
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(pending(pid, constants.signals[INTERRUPT_SIGNAL]), "the parked child holds it blocked");
      assert.equal(mailbox.getBigUint64(MB.exits, true), exits, "no exit was posted");
      assert.deepEqual(Buffer.from(new Uint8Array(mailbox.buffer, mailbox.byteOffset + MB.regs, 18 * 8)), regs, "the exit's registers are the guest's");
      // the host clears the interrupt word before it resumes the guest
      let bumped = 0;
      assert.equal(exitsOf(() => (bumped = sb.callSync("bump") as number)), plainExits, "the late signal made no exit of its own");
      assert.equal(bumped, 2 + round);
    }
    assert.equal(sb.callSync("get_counter"), 4);
    assert.equal(await sb.call("bump"), 5);
  } finally {
    sb.close();
  }
});
