/**
 * A guest that misbehaves (guests/misbehave.c) — faults, aborts, runs out of
 * memory or breaks the wire format — gives the caller a typed error with the
 * details that matter, poisons only its own sandbox (later calls are
 * PoisonedError with the original as cause), and leaves the process and new
 * sandboxes working. Each case runs through callSync() and call().
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  GuestAbortedError, GuestFaultError, GuestProtocolError, OutOfMemoryError, PoisonedError, SandboxBuilder,
  type CallOptions, type GuestValue, type Sandbox, type VmletError,
} from "../src/index.js";
import { guestPath, repoRoot } from "./helpers.js";

type Invoke = (sb: Sandbox, name: string, ...args: Array<GuestValue | CallOptions>) => Promise<GuestValue | undefined>;
const MODES: ReadonlyArray<readonly [string, Invoke]> = [
  ["callSync", async (sb, name, ...args) => sb.callSync(name, ...args)],
  ["call", (sb, name, ...args) => sb.call(name, ...args)],
];

const PAGE = 4096n;
const STACK_SIZE = 64 << 10;
const HEAP_SIZE = 2 << 20;

/** Page-fault error code bits (Intel SDM vol. 3, 4.7). */
const PF_PRESENT = 1;
const PF_WRITE = 2;
const PF_USER = 4;
const PF_FETCH = 0x10;

/** Line of the first source line of guests/misbehave.c containing `needle`. */
function sourceLine(needle: string): number {
  const lines = readFileSync(path.join(repoRoot, "guests/misbehave.c"), "utf8").split("\n");
  const index = lines.findIndex((l) => l.includes(needle));
  assert.ok(index >= 0, `"${needle}" not found in guests/misbehave.c`);
  return index + 1;
}

function buildMisbehave(): Promise<Sandbox> {
  return new SandboxBuilder().guest(guestPath("misbehave")).stackSize(STACK_SIZE).heapSize(HEAP_SIZE).timeoutMs(10_000).build();
}

/** Facts about the sandbox learned from well-behaved calls before it misbehaves. */
interface Facts {
  /** Top of the guest stack: the page above a local variable of a shallow call. */
  stackTop: bigint;
  /** Where exec_data jumps. */
  dataCode: bigint;
}

interface Case {
  name: string;
  fn: string;
  args?: GuestValue[];
  check: (err: unknown, facts: Facts) => void;
  todo?: string;
}

function fault(err: unknown, vector: number, mnemonic: string): GuestFaultError {
  assert.ok(err instanceof GuestFaultError, `expected GuestFaultError, got ${String(err)}`);
  assert.equal(err.code, "GUEST_FAULT");
  assert.equal(err.vector, vector, err.message);
  assert.equal(err.mnemonic, mnemonic);
  assert.equal(typeof err.rip, "bigint");
  assert.ok(err.message.includes(mnemonic));
  return err;
}

function pageFault(err: unknown): GuestFaultError & { address: bigint; errorCode: number } {
  const f = fault(err, 14, "#PF");
  assert.equal(typeof f.address, "bigint", "a page fault reports its address");
  assert.equal(typeof f.errorCode, "number", "a page fault reports its error code");
  return f as GuestFaultError & { address: bigint; errorCode: number };
}

function aborted(err: unknown, message: string, needle: string): void {
  assert.ok(err instanceof GuestAbortedError, `expected GuestAbortedError, got ${String(err)}`);
  assert.equal(err.code, "GUEST_ABORTED");
  assert.equal(err.guestMessage, message);
  assert.equal(path.basename(err.file), "misbehave.c");
  assert.equal(err.line, sourceLine(needle));
  assert.ok(err.message.includes(message));
}

function protocol(err: unknown, message: RegExp): void {
  assert.ok(err instanceof GuestProtocolError, `expected GuestProtocolError, got ${String(err)}`);
  assert.equal(err.code, "GUEST_PROTOCOL");
  assert.match(err.message, message);
}

function outOfMemory(err: unknown): void {
  assert.ok(err instanceof OutOfMemoryError, `expected OutOfMemoryError, got ${String(err)}`);
  assert.equal(err.code, "OUT_OF_MEMORY");
  assert.match(err.message, /misbehave\.c:\d+/);
}

const CASES: Case[] = [
  {
    name: "a NULL write is #PF at address 0 (user write, page not present)",
    fn: "null_write",
    check: (err) => {
      const f = pageFault(err);
      assert.equal(f.address, 0n);
      assert.equal(f.errorCode & (PF_PRESENT | PF_WRITE | PF_USER), PF_WRITE | PF_USER);
      assert.match(f.message, /write of 0x0.*null pointer/);
    },
  },
  {
    name: "a NULL read is #PF at address 0 (user read, page not present)",
    fn: "null_read",
    check: (err) => {
      const f = pageFault(err);
      assert.equal(f.address, 0n);
      assert.equal(f.errorCode & (PF_PRESENT | PF_WRITE | PF_USER), PF_USER);
    },
  },
  {
    name: "unbounded recursion is #PF in the guard page just below the stack",
    fn: "stack_overflow",
    check: (err, facts) => {
      const f = pageFault(err);
      const bottom = facts.stackTop - BigInt(STACK_SIZE);
      assert.ok(f.address >= bottom - PAGE && f.address < bottom, `fault at 0x${f.address.toString(16)}, guard page 0x${(bottom - PAGE).toString(16)}`);
      assert.equal(f.errorCode & (PF_PRESENT | PF_WRITE), PF_WRITE, "a write to a not-present page");
    },
  },
  { name: "integer division by zero is #DE", fn: "divide_by_zero", check: (err) => void fault(err, 0, "#DE") },
  { name: "ud2 is #UD", fn: "undefined_instruction", check: (err) => void fault(err, 6, "#UD") },
  { name: "int3 is #BP", fn: "breakpoint", check: (err) => void fault(err, 3, "#BP") },
  {
    name: "hlt at CPL 3 is #GP(0)",
    fn: "privileged",
    check: (err) => assert.equal(fault(err, 13, "#GP").errorCode, 0),
  },
  {
    name: "an `out` to a port outside the I/O bitmap is #GP",
    fn: "write_port",
    check: (err) => void fault(err, 13, "#GP"),
  },
  {
    name: "writing to its own code is a protection-violation #PF in the image",
    fn: "write_code",
    check: (err) => {
      const f = pageFault(err);
      assert.ok(f.address >= 0x100000n, `address 0x${f.address.toString(16)} is in the image`);
      assert.equal(f.errorCode & (PF_PRESENT | PF_WRITE | PF_USER), PF_PRESENT | PF_WRITE | PF_USER);
    },
  },
  {
    name: "writing to the supervisor GDT page is a protection-violation #PF at 0x1000",
    fn: "write_system",
    check: (err) => {
      const f = pageFault(err);
      assert.equal(f.address, 0x1000n);
      assert.equal(f.errorCode & (PF_PRESENT | PF_WRITE | PF_USER), PF_PRESENT | PF_WRITE | PF_USER);
    },
  },
  {
    name: "jumping into data is an instruction-fetch #PF at the data address",
    fn: "exec_data",
    check: (err, facts) => {
      const f = pageFault(err);
      assert.equal(f.address, facts.dataCode);
      assert.equal(f.rip, facts.dataCode);
      assert.ok(f.errorCode & PF_FETCH, `error code 0x${f.errorCode.toString(16)} has the fetch bit`);
    },
  },
  {
    name: "vmlet_abort is GuestAbortedError with the message, file and line",
    fn: "abort_with_message",
    check: (err) => aborted(err, "custom abort message", 'vmlet_abort("custom abort message")'),
  },
  {
    name: "vmlet_panic is GuestAbortedError with the formatted message",
    fn: "panic_formatted",
    args: [42],
    check: (err) => aborted(err, "panic number 42", 'vmlet_panic("panic number %d"'),
  },
  { name: "malloc(1 TiB) failing then vmlet_out_of_memory is OutOfMemoryError", fn: "huge_alloc", check: outOfMemory },
  { name: "allocating until the heap is exhausted is OutOfMemoryError", fn: "alloc_until_oom", check: outOfMemory },
  { name: "random bytes instead of a RETURN are GuestProtocolError", fn: "garbage_output", check: (err) => protocol(err, /bad message magic/) },
  { name: "a RETURN length past the buffer is GuestProtocolError", fn: "bad_length", check: (err) => protocol(err, /message length \d+ outside/) },
  { name: "a string result without NUL is GuestProtocolError", fn: "bad_string", check: (err) => protocol(err, /not NUL-terminated/) },
  {
    name: "a result of the wrong type is GuestProtocolError",
    fn: "lying_return",
    check: (err) => protocol(err, /"lying_return" should return i32, the guest sent string/),
  },
  {
    name: "a HOST_CALL with an out-of-range value length is GuestProtocolError",
    fn: "host_call_garbage",
    check: (err) => protocol(err, /host call.*runs past the message/),
  },
];

for (const [mode, invoke] of MODES) {
  describe(`${mode}: misbehaving guests`, () => {
    for (const c of CASES) {
      test(c.name, c.todo ? { todo: c.todo } : {}, async () => {
        let ticks = 0;
        const sb = await new SandboxBuilder()
          .guest(guestPath("misbehave"))
          .stackSize(STACK_SIZE)
          .heapSize(HEAP_SIZE)
          .timeoutMs(10_000)
          .hostFunction("tick", [], "void", () => void ticks++)
          .build();
        try {
          const stackLocal = (await invoke(sb, "stack_address")) as bigint;
          const facts: Facts = {
            stackTop: (stackLocal / PAGE + 1n) * PAGE,
            dataCode: (await invoke(sb, "data_code_address")) as bigint,
          };

          let error: unknown;
          await assert.rejects(invoke(sb, c.fn, ...(c.args ?? [])), (err: unknown) => ((error = err), true));
          c.check(error, facts);
          assert.equal(ticks, 0, "the guest's tick host function was never reached");

          assert.equal(sb.poisoned, error, "the sandbox is poisoned by that error");
          for (const next of [() => invoke(sb, "ok"), () => invoke(sb, c.fn, ...(c.args ?? []))]) {
            await assert.rejects(next(), (err: unknown) => {
              assert.ok(err instanceof PoisonedError, `expected PoisonedError, got ${String(err)}`);
              assert.equal(err.code, "POISONED");
              assert.equal(err.cause, error);
              assert.ok(err.message.includes((error as VmletError).code));
              return true;
            });
          }
        } finally {
          sb.close();
        }
        assert.ok(sb.closed);

        const fresh = await buildMisbehave();
        try {
          assert.equal(await invoke(fresh, "ok"), 1, "a new sandbox from the same guest works");
        } finally {
          fresh.close();
        }
      });
    }
  });
}

describe("fault reports", () => {
  test("rip is the guest instruction for faults with an error code (#GP, #PF)", async () => {
    for (const fn of ["privileged", "write_port", "null_write", "write_system", "stack_overflow"]) {
      const sb = await buildMisbehave();
      try {
        assert.throws(
          () => sb.callSync(fn),
          (err: unknown) => {
            assert.ok(err instanceof GuestFaultError);
            assert.ok(err.rip >= 0x100000n, `${fn}: ${err.mnemonic} reported rip 0x${err.rip.toString(16)}, outside the guest image`);
            return true;
          },
        );
      } finally {
        sb.close();
      }
    }
  });

  test("rip is the guest instruction for faults without an error code (#DE, #UD, #BP)", async () => {
      for (const fn of ["divide_by_zero", "undefined_instruction", "breakpoint"]) {
        const sb = await buildMisbehave();
        try {
          assert.throws(
            () => sb.callSync(fn),
            (err: unknown) => {
              assert.ok(err instanceof GuestFaultError);
              assert.ok(err.rip >= 0x100000n, `${fn}: ${err.mnemonic} reported rip 0x${err.rip.toString(16)}, inside the fault stubs`);
              return true;
            },
          );
        } finally {
          sb.close();
        }
      }
    },
  );
});

describe("after misbehaviour", () => {
  test("other sandboxes keep working while one is poisoned", async () => {
    const good = await buildMisbehave();
    const bad = await buildMisbehave();
    try {
      assert.equal(good.callSync("ok"), 1);
      assert.throws(() => bad.callSync("null_write"), GuestFaultError);
      assert.throws(() => bad.callSync("ok"), PoisonedError);
      assert.equal(good.callSync("ok"), 1);
      assert.equal(await good.call("ok"), 1);
    } finally {
      good.close();
      bad.close();
    }
  });

  test("many faulting sandboxes in a row leave the process healthy", async () => {
    for (let i = 0; i < 20; i++) {
      const sb = await buildMisbehave();
      try {
        assert.throws(() => sb.callSync(i % 2 ? "divide_by_zero" : "stack_overflow"), GuestFaultError);
      } finally {
        sb.close();
      }
    }
    const sb = await buildMisbehave();
    try {
      assert.equal(sb.callSync("ok"), 1);
    } finally {
      sb.close();
    }
  });

  test("a poisoned sandbox can be closed, and close is idempotent", async () => {
    const sb = await buildMisbehave();
    await assert.rejects(sb.call("undefined_instruction"), GuestFaultError);
    sb.close();
    sb.close();
    assert.ok(sb.closed);
    assert.throws(() => sb.callSync("ok"), (err: unknown) => (err as VmletError).code === "SANDBOX_CLOSED");
  });
});
