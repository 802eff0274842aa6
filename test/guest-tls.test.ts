/**
 * Thread-local storage and the stack protector (guests/tls.c, built with
 * -fstack-protector-strong): __thread variables start from their PT_TLS image, keep their
 * values across calls, go back on restore() and come along in fromSnapshot() and in a
 * saved and loaded snapshot; the canary at %fs:0x28 is random per built sandbox and a
 * smashed one is a typed abort. A guest that moves its own FS base, or tries the process
 * backend's arch_prctl, gets a typed error at most and a restore puts its thread pointer
 * back. Hostile PT_TLS headers: test/elf-loader.test.ts; hostile snapshot FS bases:
 * test/snapshot-validation.test.ts.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { backendInfo } from "../src/hypervisor/backend.js";
import { PARK_SET_FS_PC } from "../src/hypervisor/process/mailbox.js";
import { BadGuestBinaryError, GuestAbortedError, GuestFaultError, Sandbox, SandboxBuilder, Snapshot, VmletError } from "../src/index.js";
import { THREAD_POINTER } from "../src/mem/layout.js";
import { guestPath } from "./helpers.js";
import { test as kvmTest } from "./kvm.js";

const onProcess = backendInfo().name === "process";
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-tls-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const INITIAL = { counter: 41, pattern: 0x1122334455667788n, zeroSum: 0n };
/** arch_prctl codes other than ARCH_SET_FS: GS base, reads, CPUID faulting, vDSO mapping. */
const OTHER_ARCH_PRCTLS = [0x1001n, 0x1003n, 0x1004n, 0x1012n, 0x2001n];

const build = (): Promise<Sandbox> => new SandboxBuilder().guest(guestPath("tls")).build();

/** The thread-local state a test can see. */
function tlsState(sb: Sandbox): { counter: unknown; pattern: unknown; zeroSum: unknown } {
  return { counter: sb.callSync("tls_counter"), pattern: sb.callSync("tls_pattern"), zeroSum: sb.callSync("tls_zero_sum") };
}

async function withSandbox(run: (sb: Sandbox) => unknown): Promise<void> {
  const sb = await build();
  try {
    await run(sb);
  } finally {
    sb.close();
  }
}

describe("__thread variables", () => {
  test("start from their initial image, .tbss zeroed, at the thread pointer the TCB names", () =>
    withSandbox((sb) => {
      assert.deepEqual(tlsState(sb), INITIAL);
      assert.equal(sb.callSync("tls_self"), BigInt(THREAD_POINTER), "%fs:0 is the TCB's own address");
      const address = sb.callSync("tls_counter_address") as bigint;
      assert.ok(address < BigInt(THREAD_POINTER) && address >= BigInt(THREAD_POINTER - 4096), `counter at 0x${address.toString(16)}, below the thread pointer`);
      assert.equal(sb.callSync("tls_aligned_ok"), true, "a 64-byte-aligned variable is aligned and initialised");
    }));

  test("keep their values across calls, sync and async", () =>
    withSandbox(async (sb) => {
      assert.equal(sb.callSync("tls_bump"), 42);
      assert.equal(await sb.call("tls_bump"), 43);
      sb.callSync("tls_dirty", 5n);
      assert.deepEqual(tlsState(sb), { counter: 43, pattern: ~5n & 0xffffffffffffffffn, zeroSum: 5n + 300n * 5n });
    }));

  test("go back to the snapshot's values on restore()", () =>
    withSandbox((sb) => {
      const clean = sb.snapshot();
      sb.callSync("tls_bump");
      const bumped = sb.snapshot();
      sb.callSync("tls_dirty", 9n);
      assert.equal(sb.callSync("tls_aligned_ok"), true);
      sb.restore(clean);
      assert.deepEqual(tlsState(sb), INITIAL);
      assert.equal(sb.callSync("tls_aligned_ok"), true, "the aligned variable is back to its initial value");
      sb.restore(bumped);
      assert.deepEqual(tlsState(sb), { ...INITIAL, counter: 42 });
      assert.equal(sb.callSync("tls_self"), BigInt(THREAD_POINTER));
    }));

  test("come along in fromSnapshot(), with the same thread pointer and canary", () =>
    withSandbox(async (sb) => {
      sb.callSync("tls_bump");
      sb.callSync("tls_dirty", 3n);
      const snap = sb.snapshot();
      const copy = await Sandbox.fromSnapshot(snap);
      try {
        assert.deepEqual(tlsState(copy), tlsState(sb));
        assert.equal(copy.callSync("tls_self"), BigInt(THREAD_POINTER));
        assert.equal(copy.callSync("stack_canary"), sb.callSync("stack_canary"));
        assert.equal(copy.callSync("tls_bump"), 43);
        assert.equal(sb.callSync("tls_counter"), 42, "the copy's thread-local data is its own");
      } finally {
        copy.close();
      }
    }));

  test("survive save and load", () =>
    withSandbox(async (sb) => {
      sb.callSync("tls_bump");
      const dir = path.join(root, "saved");
      await sb.snapshot().save(dir, "tls");
      const loaded = await Snapshot.checkedLoad(dir, "tls");
      const copy = await Sandbox.fromSnapshot(loaded);
      try {
        assert.deepEqual(tlsState(copy), { ...INITIAL, counter: 42 });
        assert.equal(copy.callSync("tls_self"), BigInt(THREAD_POINTER));
        assert.equal(copy.callSync("stack_canary"), sb.callSync("stack_canary"));
        copy.callSync("tls_dirty", 1n);
        copy.restore(loaded);
        assert.deepEqual(tlsState(copy), { ...INITIAL, counter: 42 }, "restore to a loaded snapshot");
      } finally {
        copy.close();
      }
    }));
});

describe("the stack protector", () => {
  test("the canary is random per built sandbox, with its lowest byte zero", async () => {
    const canaries = new Set<bigint>();
    for (let i = 0; i < 3; i++) {
      await withSandbox((sb) => {
        const canary = sb.callSync("stack_canary") as bigint;
        assert.equal(canary & 0xffn, 0n);
        assert.notEqual(canary, 0n);
        canaries.add(canary);
      });
    }
    assert.equal(canaries.size, 3);
  });

  test("code compiled with -fstack-protector-strong runs; a smashed canary aborts the call, and a restore recovers", () =>
    withSandbox((sb) => {
      const clean = sb.snapshot();
      const expected = Array.from({ length: 16 }, (_, i) => 0x41 + (i % 26)).reduce((a, b) => a + b, 0);
      assert.equal(sb.callSync("fill_local", 16), expected);
      assert.throws(() => sb.callSync("fill_local", 40), (e: unknown) => {
        assert.ok(e instanceof GuestAbortedError, String(e));
        assert.equal(e.code, "GUEST_ABORTED");
        assert.match(e.message, /stack smashing detected/);
        return true;
      });
      sb.restore(clean);
      assert.equal(sb.callSync("fill_local", 16), expected);
      assert.deepEqual(tlsState(sb), INITIAL);
    }));

  test("a guest without thread-local data still has a TCB: self pointer and canary", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("hostile")).build();
    try {
      assert.equal(sb.callSync("peek", BigInt(THREAD_POINTER)), BigInt(THREAD_POINTER));
      const canary = sb.callSync("peek", BigInt(THREAD_POINTER + 0x28)) as bigint;
      assert.ok(canary !== 0n && (canary & 0xffn) === 0n, `canary 0x${canary.toString(16)}`);
    } finally {
      sb.close();
    }
  });
});

describe("a guest that moves its own FS base", () => {
  /** Runs the attack (a typed error or a harmless result), restores, and checks the thread pointer is back. */
  function attack(sb: Sandbox, run: () => unknown, expect: (error: unknown) => void = () => {}): void {
    const clean = sb.snapshot();
    try {
      run();
    } catch (error) {
      assert.ok(error instanceof VmletError, `untyped error: ${String(error)}`);
      expect(error);
    }
    sb.restore(clean);
    assert.equal(sb.callSync("tls_self"), BigInt(THREAD_POINTER));
    assert.deepEqual(tlsState(sb), INITIAL);
  }

  test("through a segment selector load: its next TLS access faults, a restore puts the thread pointer back", () =>
    withSandbox((sb) => attack(sb, () => sb.callSync("reload_fs_selector"), (e) => assert.ok(e instanceof GuestFaultError, String(e)))));

  test("through wrfsbase: #UD where the CPU refuses it, a fault at the moved base where it allows it; a restore puts it back", () =>
    withSandbox((sb) => attack(sb, () => sb.callSync("write_fs_base", 0x1000n), (e) => assert.ok(e instanceof GuestFaultError, String(e)))));

  test("through arch_prctl in its own code: a fault (no system calls)", () =>
    withSandbox((sb) => {
      for (const code of [0x1002n, ...OTHER_ARCH_PRCTLS]) {
        attack(sb, () => sb.callSync("own_arch_prctl", code, 0x1000n), (e) => assert.ok(e instanceof GuestFaultError, String(e)));
      }
    }));

  test("through the park loop's arch_prctl: every code but ARCH_SET_FS is refused there", { skip: onProcess ? false : "the park loop is the process backend's" }, () =>
    withSandbox((sb) => {
      for (const code of OTHER_ARCH_PRCTLS) {
        attack(sb, () => sb.callSync("jump_to_arch_prctl", PARK_SET_FS_PC - 2n, code, 0x1000n), (e) => {
          assert.ok(e instanceof GuestFaultError, String(e));
          assert.match(e.message, /#UD .* at rip 0x5f00001000c0/, "the filter's trap, reported at the system call");
        });
      }
    }));
});

test("a guest whose thread-local data does not fit below the thread pointer is a BadGuestBinaryError", async () => {
  const elf = new Uint8Array(fs.readFileSync(guestPath("tls")));
  const view = new DataView(elf.buffer);
  const phoff = Number(view.getBigUint64(32, true));
  const phnum = view.getUint16(56, true);
  const tls = Array.from({ length: phnum }, (_, i) => phoff + i * 56).find((at) => view.getUint32(at, true) === 7);
  assert.ok(tls !== undefined, "tls.elf has a PT_TLS segment");
  view.setBigUint64(tls + 40, 1n << 20n, true); // p_memsz: 1 MiB
  await assert.rejects(new SandboxBuilder().guest(elf).build(), (e: unknown) => {
    assert.ok(e instanceof BadGuestBinaryError, String(e));
    assert.match(e.message, /thread-local data of 1048576 bytes does not fit/);
    return true;
  });
});

describe("across backends", () => {
  kvmTest("a snapshot taken on one backend resumes on the other with its thread-local data and canary", async () => {
    for (const [from, to] of [["kvm", "process"], ["process", "kvm"]] as const) {
      const sb = await new SandboxBuilder().guest(guestPath("tls")).backend(from).build();
      try {
        sb.callSync("tls_bump");
        const copy = await Sandbox.fromSnapshot(sb.snapshot(), { backend: to });
        try {
          assert.deepEqual(tlsState(copy), { ...INITIAL, counter: 42 }, `${from} → ${to}`);
          assert.equal(copy.callSync("tls_self"), BigInt(THREAD_POINTER));
          assert.equal(copy.callSync("stack_canary"), sb.callSync("stack_canary"));
        } finally {
          copy.close();
        }
      } finally {
        sb.close();
      }
    }
  });
});
