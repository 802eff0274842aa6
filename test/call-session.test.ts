/** What each kind of VM exit means to a call, checked against a fake VM (no KVM needed). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CallSession, type CallContext } from "../src/sandbox/call-session.js";
import { HostFunctionRegistry } from "../src/sandbox/host-functions.js";
import { CancelledError, GuestFaultError, GuestProtocolError, HypervisorError, TimeoutError } from "../src/errors/errors.js";
import type { VirtualMachine, VmExit } from "../src/hypervisor/virtual-machine.js";

function context(cancelled = false): CallContext {
  const bytes = new Uint8Array(16384);
  const view = new DataView(bytes.buffer);
  const vm = {
    backend: { name: "kvm", flavour: "hardware" },
    memory: bytes,
    faultRegisters: () => ({ rip: 0x100123n, rsp: 0n, cr2: 0n }),
  } as unknown as VirtualMachine;
  return {
    vm,
    input: { bytes, view, address: 4096, size: 4096, recordWrite: () => undefined },
    output: { bytes, view, address: 8192, size: 4096, recordWrite: () => undefined },
    hostFunctions: new HostFunctionRegistry(),
    logger: () => undefined,
    cancelled: () => cancelled,
  };
}

const session = (ctx = context(), timeoutMs?: number): CallSession => new CallSession(ctx, "f", "i32", timeoutMs);

test("a shutdown (triple fault) is a GuestFaultError with the rip the vCPU shows", () => {
  assert.throws(() => session().onExit({ kind: "shutdown" }), (e: unknown) => e instanceof GuestFaultError && e.rip === 0x100123n && /triple fault/.test(e.message));
});

test("failed runs and hypervisor exits are HypervisorError", () => {
  for (const exit of [{ kind: "internal-error", suberror: 1 }, { kind: "fail-entry", reason: 7n }, { kind: "error", errno: 14 }] as VmExit[]) {
    assert.throws(() => session().onExit(exit), HypervisorError, exit.kind);
  }
});

test("exits a vmlet guest never makes are GuestProtocolError", () => {
  for (const exit of [{ kind: "halt" }, { kind: "mmio", address: 0xfee00000n, isWrite: true }, { kind: "io-in", port: 0x10, size: 1 }, { kind: "io-out", port: 0x80, size: 1, value: 0 }] as VmExit[]) {
    assert.throws(() => session().onExit(exit), GuestProtocolError, exit.kind);
  }
});

test("an interrupt is a cancellation, a timeout, or (neither) a stray signal to resume from", () => {
  assert.throws(() => session(context(true)).onExit({ kind: "interrupted" }), CancelledError);
  assert.deepEqual(session(context(), 10_000).onExit({ kind: "interrupted" }), { kind: "resume" });
  assert.deepEqual(session().onExit({ kind: "interrupted" }), { kind: "resume" });
  const late = session(context(), 0.001);
  const until = performance.now() + 2;
  while (performance.now() < until);
  assert.throws(() => late.onExit({ kind: "interrupted" }), TimeoutError);
  assert.throws(() => late.nextRunTimeoutNs(), TimeoutError);
});

test("a fault-stub port is a GuestFaultError for that vector", () => {
  assert.throws(() => session().onExit({ kind: "io-out", port: 0x20 + 6, size: 1, value: 0 }), (e: unknown) => e instanceof GuestFaultError && e.vector === 6 && e.mnemonic === "#UD");
});

test("a 2- or 4-byte out on a protocol port is GuestProtocolError, whatever the output buffer holds", () => {
  for (const port of [0x10, 0x11, 0x12, 0x13]) {
    for (const size of [2, 4]) {
      assert.throws(() => session().onExit({ kind: "io-out", port, size, value: 0 }), (e: unknown) => e instanceof GuestProtocolError && /one-byte outs/.test(e.message), `port 0x${port.toString(16)}, ${size} bytes`);
    }
  }
});

test("the fault ports are exactly 0x20 + 0 … 0x20 + 31: the ports on either side are unknown", () => {
  assert.throws(() => session().onExit({ kind: "io-out", port: 0x20, size: 1, value: 0 }), (e: unknown) => e instanceof GuestFaultError && e.vector === 0);
  assert.throws(() => session().onExit({ kind: "io-out", port: 0x3f, size: 1, value: 0 }), (e: unknown) => e instanceof GuestFaultError && e.vector === 31);
  for (const port of [0x1f, 0x40, 0x14]) {
    assert.throws(() => session().onExit({ kind: "io-out", port, size: 1, value: 0 }), (e: unknown) => e instanceof GuestProtocolError && /unknown port/.test(e.message), `port 0x${port.toString(16)}`);
  }
});
