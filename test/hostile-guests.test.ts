/**
 * A hostile guest against the backend that runs it (guests/hostile.c): system calls of
 * every kind, a 32-bit system call, writes to the process backend's mailbox, signal stack,
 * resume frame and helper code, a faked exit, a jump into the child's park loop or its
 * system-call instruction, signals blocked with a forged sigreturn frame. On every backend
 * each attempt ends in a typed error or a harmless result, a neighbour sandbox is not
 * disturbed, and a restore gives a sandbox with nothing of the attack left in it.
 */
import assert from "node:assert/strict";
import { notifyFd } from "../src/hypervisor/process/exit-notifier.js";
import { readdirSync, readFileSync, readlinkSync, writeSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { backendInfo } from "../src/hypervisor/backend.js";
import { GuestFaultError, GuestProtocolError, Sandbox, SandboxBuilder, TimeoutError, VmletError, type Snapshot } from "../src/index.js";
import { guestPath } from "./helpers.js";
import { parkedVmStats } from "../src/sandbox/parked-vms.js";

const onProcess = backendInfo().name === "process";
const processOnly = onProcess ? {} : { skip: "exercises the process backend's child (this run uses KVM)" };

const CONTROL = 0x5e00_0000_0000n;
const MAILBOX_RESERVED = CONTROL + 0x800n;
const RESUME_FRAME = CONTROL + 0x2000n;
const SIGNAL_STACK = CONTROL + 0x4000n;

/** System calls a sandboxed guest might try: I/O, memory, processes, signals, privileges. */
const SYSCALLS: ReadonlyArray<readonly [string, number]> = [
  ["read", 0], ["write", 1], ["open", 2], ["mmap", 9], ["mprotect", 10], ["munmap", 11], ["rt_sigaction", 13],
  ["rt_sigprocmask", 14], ["mremap", 25], ["getpid", 39], ["socket", 41], ["clone", 56], ["fork", 57], ["vfork", 58],
  ["execve", 59], ["exit", 60], ["kill", 62], ["ptrace", 101], ["sigaltstack", 131], ["prctl", 157], ["arch_prctl", 158],
  ["exit_group", 231], ["tgkill", 234], ["seccomp", 317], ["execveat", 322], ["userfaultfd", 323], ["io_uring_setup", 425],
  ["clone3", 435], ["process_madvise", 440],
];

let sb: Sandbox;
let clean: Snapshot;
let neighbour: Sandbox;

before(async () => {
  sb = await new SandboxBuilder().guest(guestPath("hostile")).timeoutMs(5_000).build();
  clean = sb.snapshot();
  neighbour = await new SandboxBuilder().guest(guestPath("hostile")).build();
});

after(() => {
  sb.close();
  neighbour.close();
});

/** Runs an attack, expects a typed error (or a harmless result), restores, and checks both sandboxes work. */
function attack(run: () => unknown, expect?: (error: unknown) => void): void {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof VmletError, `untyped error: ${String(error)}`);
    expect?.(error);
  }
  sb.restore(clean);
  assert.equal(sb.callSync("ok"), 1);
  assert.equal(neighbour.callSync("ok"), 1);
}

const childOf = (s: Sandbox): number => {
  const pid = (s as unknown as { vm: { childPid?: number } }).vm.childPid;
  assert.ok(pid !== undefined, "the sandbox has a child process");
  return pid;
};

/** attack(), where the call must fail. */
function attackThrows(run: () => unknown, expect: (error: unknown) => void): void {
  let thrown = false;
  attack(() => {
    try {
      run();
    } catch (error) {
      thrown = true;
      throw error;
    }
  }, expect);
  assert.ok(thrown, "the call failed");
}

/** attack() of an async call, which must fail when `expect` is given. */
async function attackAsync(run: () => Promise<unknown>, expect?: (error: unknown) => void): Promise<void> {
  let thrown = false;
  try {
    await run();
  } catch (error) {
    thrown = true;
    assert.ok(error instanceof VmletError, `untyped error: ${String(error)}`);
    expect?.(error);
  }
  if (expect) assert.ok(thrown, "the call failed");
  sb.restore(clean);
  assert.equal(await sb.call("ok"), 1);
  assert.equal(neighbour.callSync("ok"), 1);
}

const isUdFault = (error: unknown): void => {
  assert.ok(error instanceof GuestFaultError, `expected a guest fault, got ${String(error)}`);
  assert.equal(error.vector, 6, `#UD expected, got ${error.mnemonic}`);
};

describe("system calls", () => {
  test("every system call is a #UD guest fault at the instruction, as in a VM without EFER.SCE", () => {
    for (const [name, nr] of SYSCALLS) {
      let thrown: unknown;
      try {
        sb.callSync("do_syscall", BigInt(nr), 0n, 0n, 0n);
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof GuestFaultError, `${name} (${nr}) did not fault: ${String(thrown)}`);
      assert.equal(thrown.vector, 6, `${name}: ${thrown.mnemonic}`);
      assert.ok(thrown.rip >= 0x100000n, `${name}: the fault names the guest's instruction`);
      sb.restore(clean);
    }
    assert.equal(sb.callSync("ok"), 1);
  });

  test("futex with a timeout, or any operation but wait and wake, is refused", () => {
    attack(() => sb.callSync("futex_op", 0n, 1n), isUdFault); // FUTEX_WAIT with a timeout
    attack(() => sb.callSync("futex_op", 9n, 0n), isUdFault); // FUTEX_WAIT_BITSET
    attack(() => sb.callSync("futex_op", 5n, 0n), isUdFault); // FUTEX_WAKE_OP
  });

  test("a 32-bit system call (int 0x80) is a guest fault and the sandbox restores", () => {
    attack(() => sb.callSync("do_int80", 20 /* getpid */), (error) => {
      assert.ok(error instanceof GuestFaultError, String(error));
      // A VM has no gate for vector 0x80 (#GP). On the process backend the kernel gives #GP too where
      // it has no 32-bit emulation, and otherwise seccomp traps the 32-bit call (#UD, as for syscall).
      assert.ok(error.vector === 13 || (onProcess && error.vector === 6), `vector ${error.vector}`);
    });
  });

  test("the system-call instruction inside the child's own code is filtered like any other", () => {
    attack(() => sb.callSync("jump_to_syscall_gadget", 57n /* fork */), (error) => {
      if (onProcess) isUdFault(error);
    });
  });
});

describe("the child's own memory", () => {
  test("the resume frame and the helper's code cannot be written", () => {
    for (const fn of [() => sb.callSync("fill", RESUME_FRAME, 64, 0x41), () => sb.callSync("write_helper_code")]) {
      attack(fn, (error) => {
        assert.ok(error instanceof GuestFaultError, String(error));
        assert.equal(error.vector, 14);
      });
    }
  });

  test("garbage written over the mailbox and the signal stack reaches the host as a typed error at most", processOnly, () => {
    attack(() => sb.callSync("fill", CONTROL, 0x2000, 0xff));
    attack(() => sb.callSync("fill", SIGNAL_STACK, 0x10000, 0xff));
    attack(() => sb.callSync("fill", CONTROL + 0x10n, 0x1000 - 0x10, 0x5a));
  });

  test("a guest that fakes an exit and keeps running is stopped before a restore, and nothing it wrote survives", processOnly, () => {
    attack(() => sb.callSync("fake_exit_then_spin", 0x41n, 0n));
    assert.equal(sb.callSync("or_of", MAILBOX_RESERVED, 64), 0);
    // Without a restore in between: the next call finds a guest that never stopped, and times out.
    assert.doesNotThrow(() => {
      try {
        sb.callSync("fake_exit_then_spin", 0x42n, 0n);
        sb.callSync("ok", { timeoutMs: 200 });
      } catch (error) {
        assert.ok(error instanceof VmletError, String(error));
      }
    });
    sb.restore(clean);
    assert.equal(sb.callSync("ok"), 1);
  });

  test("a guest that fakes an exit and keeps writing cannot reach the next sandbox through a reused VM", processOnly, async () => {
    const base = await new SandboxBuilder().guest(guestPath("hostile")).build();
    const address = base.callSync("leave_in_heap", 0n) as bigint;
    const snap = base.snapshot();
    base.close();
    const rogue = await Sandbox.fromSnapshot(snap);
    try {
      rogue.callSync("fake_exit_then_spin", 0x77n, address);
    } catch (error) {
      assert.ok(error instanceof VmletError, String(error));
    }
    rogue.close(); // not poisoned: its VM is parked for the next sandbox of this snapshot
    const reusedBefore = parkedVmStats().reused;
    const next = await Sandbox.fromSnapshot(snap);
    try {
      assert.equal(parkedVmStats().reused, reusedBefore + 1, "the rogue's VM was reused");
      await new Promise((resolve) => setTimeout(resolve, 20)); // a rogue still running would write now
      assert.equal(next.callSync("peek", address), 0n);
    } finally {
      next.close();
    }
  });

  test("a guest that jumps into the park loop resumes only where the host says", processOnly, () => {
    attack(() => sb.callSync("jump_to_park"));
  });

  test("the park loop's notify write is refused for any fd but the notify eventfd, any length but 8 and any buffer but the frame's", processOnly, () => {
    // [0, 8] from the guest's own buffer: the filter wants the frame's read-only notify word.
    for (const [fd, count] of [[1n, 8n], [0n, 9n], [0n, 7n], [0n, 8n | (1n << 32n)], [3n, 8n], [0n, 8n]] as const) {
      attackThrows(() => sb.callSync("jump_to_notify_gadget", fd, count, { timeoutMs: 2000 }), (error) => {
        isUdFault(error);
        assert.match((error as Error).message, /at rip 0x5f0000100140/, "the filter's trap, at the system call");
      });
    }
  });

  test("a notification without an exit only makes the host look: the async call runs on to its deadline", processOnly, async () => {
    // What a guest could do with the park loop's notify write, done from here (the eventfd is
    // the thread's: exit-notifier.ts): the mailbox says the guest still runs, so the call goes on.
    const call = sb.call("spin", { timeoutMs: 300 });
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      writeSync(notifyFd(), one);
    }
    await assert.rejects(call, (error: unknown) => error instanceof TimeoutError);
    sb.restore(clean);
    assert.equal(await sb.call("ok"), 1);
  });

  test("an async call whose guest posts an exit without its notification still ends (the runner sees it), with no deadline", { ...processOnly, timeout: 30_000 }, async () => {
    await attackAsync(() => sb.call("fake_exit_then_spin", 0x43n, 0n));
  });

  test("a guest that blocks every signal and spins is killed at its deadline", () => {
    attack(() => sb.callSync("block_signals_and_spin", { timeoutMs: 200 }), (error) => {
      if (onProcess) assert.ok(error instanceof TimeoutError, String(error));
      else isUdFault(error);
    });
  });
});

describe("protocol ports used the wrong way", () => {
  const PROTOCOL_PORTS = [0x10, 0x11, 0x12, 0x13];
  const isProtocolError = (e: unknown): boolean => e instanceof GuestProtocolError;
  const isGp = (e: unknown): boolean => e instanceof GuestFaultError && e.mnemonic === "#GP";

  test("an `in` from a protocol port is GuestProtocolError; from any other port a #GP fault", () => {
    for (const port of PROTOCOL_PORTS) attack(() => sb.callSync("port_in", port), (e) => assert.ok(isProtocolError(e), `in from 0x${port.toString(16)}: ${String(e)}`));
    for (const port of [0x0f, 0x14, 0x20, 0x80]) attack(() => sb.callSync("port_in", port), (e) => assert.ok(isGp(e), `in from 0x${port.toString(16)}: ${String(e)}`));
  });

  test("a wide `out` inside the protocol ports is GuestProtocolError; one reaching past 0x13 is a #GP fault, as the TSS I/O bitmap gives", () => {
    const cases: Array<[number, number, (e: unknown) => boolean]> = [
      [0x10, 2, isProtocolError], [0x11, 2, isProtocolError], [0x12, 2, isProtocolError], [0x10, 4, isProtocolError],
      [0x13, 2, isGp], [0x11, 4, isGp], [0x12, 4, isGp], [0x13, 4, isGp], [0x0f, 2, isGp], [0x0e, 4, isGp],
    ];
    for (const [port, width, expected] of cases) {
      let threw = false;
      attack(() => sb.callSync("port_out", port, width), (e) => {
        threw = true;
        assert.ok(expected(e), `out${width === 2 ? "w" : "l"} to 0x${port.toString(16)}: ${String(e)}`);
      });
      assert.ok(threw, `out${width === 2 ? "w" : "l"} to 0x${port.toString(16)} was accepted as a protocol exit`);
    }
  });
});

describe("restores leave nothing of a request", () => {
  test("heap, registers, mailbox and signal stack are back to the snapshot's", () => {
    const secret = 0x5ec7e7_5ec7e7n;
    const address = sb.callSync("leave_in_heap", 0n) as bigint;
    sb.restore(clean);
    const heapBefore = sb.callSync("peek", address);
    const xmmBefore = sb.callSync("read_xmm15");
    sb.callSync("leave_in_heap", secret);
    sb.callSync("stash_in_registers", secret);
    if (onProcess) {
      sb.callSync("fill", MAILBOX_RESERVED, 64, 0x5e);
      sb.callSync("fill", SIGNAL_STACK + 0x100n, 64, 0x5e);
    }
    sb.restore(clean);
    assert.equal(sb.callSync("peek", address), heapBefore);
    assert.equal(sb.callSync("read_xmm15"), xmmBefore);
    if (onProcess) {
      assert.equal(sb.callSync("or_of", MAILBOX_RESERVED, 64), 0);
      assert.equal(sb.callSync("or_of", SIGNAL_STACK + 0x100n, 64), 0);
    }
  });
});

describe("the process backend's child", () => {

  test("has seccomp and no_new_privs on, no open fd but the notify eventfd and its write log, zero fd and process limits", processOnly, () => {
    const pid = childOf(neighbour);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    // fd 0: the eventfd it writes after an async run's exit (the filter allows 8 bytes to it from one
    // instruction); then only the userfaultfd that logs the guest's writes (no call can use it).
    const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
    assert.deepEqual(fds, [0, 1]);
    assert.equal(readlinkSync(`/proc/${pid}/fd/0`), "anon_inode:[eventfd]");
    assert.equal(readlinkSync(`/proc/${pid}/fd/1`), "anon_inode:[userfaultfd]");
    const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
    assert.match(limits, /^Max open files\s+0\s+0\s/m);
    assert.match(limits, /^Max processes\s+0\s+0\s/m);
  });

  test("keeps no writable memory of its own: everything writable is guest memory or the control pages", processOnly, () => {
    const pid = childOf(neighbour);
    const maps = readFileSync(`/proc/${pid}/maps`, "utf8").trim().split("\n");
    for (const line of maps) {
      const [range, perms, , , , name = ""] = line.split(/\s+/);
      if (perms!.includes("w")) assert.match(name, /^\/memfd:vmlet-(guest|control)/, `writable mapping ${range} ${name || "(anonymous)"}`);
      assert.ok(!(perms!.includes("w") && perms!.includes("x")), `writable and executable: ${line}`);
    }
  });
});
