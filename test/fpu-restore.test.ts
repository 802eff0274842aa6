/**
 * FPU state on restore. Guests built with the current SDK save their FPU state before
 * every READY exit and reload it as the first thing after resuming (vmlet__ready and
 * vmlet__resume, guest/src/start.S): with fxsave64/fxrstor64 where the guest reaches only
 * x87 and SSE (hardware KVM), with xsave64/xrstor64 of the host's XCR0 under PVM, where
 * the guest also reaches AVX and PKRU. Restores then skip KVM_SET_XSAVE. Whatever the guest
 * leaves in xmm15, MXCSR, the x87 control word, the upper half of ymm15 or PKRU before a
 * restore must not survive it: on every restore path, with the reload and with
 * KVM_SET_XSAVE forced, the snapshot's values come back. Decisions are checked on the
 * bytes and on what reaches the native restore, never on time.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "./kvm.js";
import { GuestFaultError, Sandbox, Snapshot, type HostFunctionDefinition } from "../src/index.js";
import { backendInfo } from "../src/hypervisor/backend.js";
import { cpuinfoHasFxsaveLeak, FPU_MARK, fpuResume, guestXsaveMask, RESUME_SEQUENCE, setGuestFpuReload, xsaveToLoad } from "../src/hypervisor/fpu-reload.js";
import { KvmVcpu } from "../src/hypervisor/kvm/vcpu.js";
import type { CpuState, VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { repoRoot } from "./helpers.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

after(() => setGuestFpuReload(true));

const XMM = 0x1234_5678_9abc_def0n;
const MXCSR = 0x1f80 | (3 << 13); // all exceptions masked, round toward zero
const X87_CW = 0x037f & ~0x0300; // all exceptions masked, 24-bit precision
const DEFAULT_MXCSR = 0x1f80;
const DEFAULT_X87_CW = 0x037f;
/** The VM behind a sandbox (tests look at what it decides). */
const vmOf = (sb: Sandbox): VirtualMachine => (sb as unknown as { vm: VirtualMachine }).vm;

/** A sandbox with known FPU state in registers only, and its snapshot. */
async function fpuSnapshot(): Promise<{ sb: Sandbox; snap: Snapshot }> {
  const sb = await buildSnapshotGuest();
  sb.callSync("xmm_put", XMM);
  sb.callSync("set_mxcsr", MXCSR);
  sb.callSync("set_x87_cw", X87_CW);
  return { sb, snap: sb.snapshot() };
}

/** What a hostile guest would leave behind for the next restore to carry over. */
function scribble(sb: Sandbox): void {
  sb.callSync("xmm_put", 42n);
  sb.callSync("set_mxcsr", DEFAULT_MXCSR);
  sb.callSync("set_x87_cw", DEFAULT_X87_CW);
}

function assertSnapshotFpu(sb: Sandbox, how: string): void {
  assert.equal(sb.callSync("xmm_get"), XMM, `${how}: xmm15`);
  assert.equal(sb.callSync("get_mxcsr"), MXCSR, `${how}: MXCSR`);
  assert.equal(sb.callSync("get_x87_cw"), X87_CW, `${how}: x87 control word`);
}

/** Records the XSAVE area each restore registers with the native plan (empty: no KVM_SET_XSAVE). */
function spyRestoreSource(): { lengths: number[]; restore: () => void } {
  const original = Object.getOwnPropertyDescriptor(KvmVcpu.prototype, "restoreSource")!;
  const lengths: number[] = [];
  KvmVcpu.prototype.restoreSource = function (this: KvmVcpu, image: Uint8Array, regs: BigUint64Array, xsave: Uint8Array) {
    lengths.push(xsave.length);
    return (original.value as typeof KvmVcpu.prototype.restoreSource).call(this, image, regs, xsave);
  };
  return { lengths, restore: () => Object.defineProperty(KvmVcpu.prototype, "restoreSource", original) };
}

test("without a restore, FPU registers keep their values across calls (so a leak would show)", async () => {
  const sb = await buildSnapshotGuest();
  try {
    sb.callSync("xmm_put", 42n);
    sb.callSync("bump");
    assert.equal(sb.callSync("xmm_get"), 42n);
    sb.callSync("set_mxcsr", MXCSR);
    sb.callSync("set_x87_cw", X87_CW);
    sb.callSync("bump");
    assert.equal(sb.callSync("get_mxcsr"), MXCSR);
    assert.equal(sb.callSync("get_x87_cw"), X87_CW);
  } finally {
    sb.close();
  }
});

for (const reload of [true, false]) {
  describe(reload ? "the guest reloads its FPU state (no KVM_SET_XSAVE)" : "KVM_SET_XSAVE forced", () => {
    const withMode = (fn: () => Promise<void>) => async () => {
      setGuestFpuReload(reload);
      try {
        await fn();
      } finally {
        setGuestFpuReload(true);
      }
    };

    test("eager restore brings back xmm15, MXCSR and the x87 control word", withMode(async () => {
      const { sb, snap } = await fpuSnapshot();
      try {
        for (let i = 0; i < 3; i++) {
          scribble(sb);
          assert.equal(sb.restore(snap).remapped, false);
          assertSnapshotFpu(sb, `eager restore ${i}`);
        }
      } finally {
        sb.close();
      }
    }));

    test("deferred restore brings them back", withMode(async () => {
      const { sb, snap } = await fpuSnapshot();
      try {
        for (let i = 0; i < 3; i++) {
          scribble(sb);
          sb.restore(snap, { deferred: true });
          assertSnapshotFpu(sb, `deferred restore ${i}`);
        }
      } finally {
        sb.close();
      }
    }));

    for (const fault of ["null_write", "divide_by_zero", "undefined_instruction"]) {
      test(`restore of a sandbox poisoned by ${fault} brings them back`, withMode(async () => {
        const { sb, snap } = await fpuSnapshot();
        try {
          for (const deferred of [false, true]) {
            scribble(sb);
            assert.throws(() => sb.callSync(fault));
            assert.ok(sb.poisoned);
            sb.restore(snap, { deferred });
            assertSnapshotFpu(sb, `after ${fault}, ${deferred ? "deferred" : "eager"}`);
          }
        } finally {
          sb.close();
        }
      }));
    }

    test("AVX (upper half of ymm15) and PKRU: unreachable (#UD) or restored", withMode(async () => {
      const sb = await buildSnapshotGuest();
      const start = sb.snapshot();
      try {
        for (const [put, get, before, after] of [["ymm_hi_put", "ymm_hi_get", 7n, 42n], ["pkru_put", "pkru_get", 0, 0x0c]] as const) {
          let reachable = true;
          try {
            sb.callSync(put, before);
          } catch (error) {
            assert.ok(error instanceof GuestFaultError && error.vector === 6, `${put}: ${String(error)}`);
            assert.notEqual(backendInfo().flavour, "pvm", "on PVM the guest can reach it");
            reachable = false;
          }
          if (!reachable) {
            sb.restore(start); // the #UD poisoned it
            continue;
          }
          const snap = sb.snapshot();
          sb.callSync(put, after);
          assert.equal(sb.callSync(get), after, `${get}: the value stays without a restore`);
          sb.restore(snap);
          assert.equal(sb.callSync(get), before, `${get}: back to the snapshot's after an eager restore`);
          sb.callSync(put, after);
          sb.restore(snap, { deferred: true });
          assert.equal(sb.callSync(get), before, `${get}: back to the snapshot's after a deferred restore`);
        }
      } finally {
        sb.close();
      }
    }));

    test("Sandbox.fromSnapshot starts with the snapshot's values, also on a reused VM", withMode(async () => {
      const { sb, snap } = await fpuSnapshot();
      sb.close();
      for (let i = 0; i < 3; i++) {
        const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
        try {
          assertSnapshotFpu(other, `fromSnapshot ${i}`);
          scribble(other);
          other.restore(snap);
          assertSnapshotFpu(other, `fromSnapshot ${i}, then restore`);
          scribble(other); // left in the VM that the next fromSnapshot may reuse
        } finally {
          other.close();
        }
      }
    }));
  });
}

describe("the decision", () => {
  const golden = path.join(repoRoot, "test/golden/snapshots");
  const goldenHosts = [
    { name: "golden_twice", params: ["i32"], returns: "i32", impl: (x: number) => 2 * x },
    { name: "golden_extra", params: [], returns: "void", impl: () => undefined },
  ] as unknown as HostFunctionDefinition[];

  test("the host here does not have the FXSAVE leak, and the cpuinfo check finds it where it is", () => {
    assert.equal(cpuinfoHasFxsaveLeak("processor\t: 0\nbugs\t\t: fxsave_leak sysret_ss_attrs spectre_v1\n"), true);
    assert.equal(cpuinfoHasFxsaveLeak("processor\t: 0\nbugs\t\t: sysret_ss_attrs spectre_v1\nflags\t\t: fxsave_leak_not\n"), false);
  });

  test("a snapshot of a freshly built guest resumes at vmlet__resume with the mask this host gave it; a changed byte or RSP does not", async () => {
    const { sb, snap } = await fpuSnapshot();
    try {
      const vm = vmOf(sb), flavour = vm.backend.flavour, xcr0 = vm.guestXcr0;
      const image = snap.image.view, cpu = snap.state.cpu;
      const rip = Number(cpu.rip), rsp = Number(cpu.gprs[6]!);
      assert.deepEqual([...image.subarray(rip, rip + RESUME_SEQUENCE.length)], [...RESUME_SEQUENCE]);
      assert.equal(new DataView(image.buffer, image.byteOffset).getUint32(rsp + FPU_MARK, true), guestXsaveMask(xcr0), "the mask the guest saved with");
      if (flavour === "pvm") assert.notEqual(guestXsaveMask(xcr0), 0, "under PVM the guest saves with xsave64 (it reaches AVX/PKRU)");
      assert.deepEqual(fpuResume(image, cpu, flavour, xcr0), { reloads: true });
      assert.equal(xsaveToLoad(image, cpu, flavour, xcr0).length, 0, "no KVM_SET_XSAVE");
      for (let i = 0; i < RESUME_SEQUENCE.length; i++) {
        const copy = image.slice();
        copy[rip + i]! ^= 0x01;
        assert.equal(fpuResume(copy, cpu, flavour, xcr0).reloads, false, `byte ${i} changed`);
      }
      const gprs = cpu.gprs.slice();
      gprs[6] = gprs[6]! + 16n;
      assert.equal(fpuResume(image, { ...cpu, gprs } as CpuState, flavour, xcr0).reloads, false, "RSP not 64-byte aligned");
      assert.equal(fpuResume(image, { ...cpu, rip: BigInt(image.length - 2) } as CpuState, flavour, xcr0).reloads, false, "RIP at the end of memory");
      setGuestFpuReload(false);
      assert.equal(fpuResume(image, cpu, flavour, xcr0).reloads, false, "switched off");
      assert.equal(xsaveToLoad(image, cpu, flavour, xcr0), cpu.xsave, "switched off");
      setGuestFpuReload(true);
    } finally {
      sb.close();
    }
  });

  test("the decision for each recorded mask and host: reload, fix the record, or keep the ioctl", async () => {
    const { sb, snap } = await fpuSnapshot();
    try {
      const cpu = snap.state.cpu, rsp = Number(cpu.gprs[6]!);
      const withMark = (mark: number): Uint8Array => {
        const copy = snap.image.view.slice();
        new DataView(copy.buffer).setUint32(rsp + FPU_MARK, mark, true);
        return copy;
      };
      const at = rsp + FPU_MARK;
      const AVX_PKRU = 0x207;
      // hardware KVM: fxrstor64 covers all the guest reaches; an xsave record must become 0 (xrstor64 would be #UD).
      assert.deepEqual(fpuResume(withMark(0), cpu, "hardware", 0), { reloads: true });
      assert.deepEqual(fpuResume(withMark(AVX_PKRU), cpu, "hardware", 0), { reloads: true, fixMarkAt: at });
      // PVM: only a record covering the host's XCR0 reloads everything.
      assert.deepEqual(fpuResume(withMark(AVX_PKRU), cpu, "pvm", AVX_PKRU), { reloads: true });
      assert.deepEqual(fpuResume(withMark(0), cpu, "pvm", AVX_PKRU), { reloads: false }, "fxrstor64 misses AVX and PKRU");
      assert.deepEqual(fpuResume(withMark(0x7), cpu, "pvm", AVX_PKRU), { reloads: false }, "a record without PKRU");
      assert.deepEqual(fpuResume(withMark(AVX_PKRU), cpu, "pvm", 0x7), { reloads: false, fixMarkAt: at }, "a component this host lacks");
      assert.deepEqual(fpuResume(withMark(AVX_PKRU), cpu, "pvm", 2 ** 33 + AVX_PKRU), { reloads: false }, "XCR0 beyond bit 31 is never covered");
      // The mask the host hands out: the guest's XCR0 if the SDK's area holds it all.
      assert.equal(guestXsaveMask(0), 0);
      assert.equal(guestXsaveMask(AVX_PKRU), AVX_PKRU);
      assert.equal(guestXsaveMask(0x2e7), 0x2e7, "AVX-512");
      assert.equal(guestXsaveMask(0x60207), 0, "AMX tiles do not fit the area");
      assert.equal(guestXsaveMask(2 ** 62 + 7), 0);
    } finally {
      sb.close();
    }
  });

  test("a snapshot whose record does not fit this host is fixed before the guest runs, and resumes with its values", async () => {
    const { sb, snap } = await fpuSnapshot();
    sb.close();
    const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      // As on a host whose guests reach only x87/SSE (hardware KVM): the record must become 0.
      const vm = vmOf(other);
      Object.defineProperty(vm, "guestXcr0", { value: 0 });
      Object.defineProperty(vm, "backend", { value: { name: "kvm", flavour: "hardware" } });
      (other as unknown as { facts: undefined }).facts = undefined; // worked out per base for the real host; redo for this one
      const mark = Number(snap.state.cpu.gprs[6]!) + FPU_MARK;
      const expected = fpuResume(snap.image.view, snap.state.cpu, "hardware", 0);
      if (guestXsaveMask(backendInfo().flavour === "pvm" ? 0x207 : 0) !== 0) assert.equal(expected.fixMarkAt, mark);
      setGuestFpuReload(false); // here (PVM) fxrstor64 alone would not cover AVX/PKRU: keep the ioctl for the values not checked
      for (const deferred of [false, true]) {
        scribble(other);
        other.restore(snap, { deferred });
        assertSnapshotFpu(other, `restore with the record fixed (${deferred ? "deferred" : "eager"})`);
        other.snapshot(); // flushes; the guest saved with fxsave64 at its last READY (mask 0)
        assert.equal(new DataView(vm.memory.buffer, vm.memory.byteOffset).getUint32(mark, true), 0, "the guest's record says fxsave64");
      }
    } finally {
      setGuestFpuReload(true);
      other.close();
    }
  });

  const goldenTags = Object.keys(JSON.parse(fs.readFileSync(path.join(repoRoot, "test/golden/expected.json"), "utf8")) as object);
  /** Goldens taken before guests reloaded their FPU state (docs/snapshot-versioning.md: they stay as they are). */
  const beforeReload = ["basic-v1", "second-generation-v1"];
  test("there are golden snapshots of both kinds to check", () => {
    assert.ok(beforeReload.every((tag) => goldenTags.includes(tag)));
    assert.ok(goldenTags.some((tag) => !beforeReload.includes(tag)));
  });
  for (const tag of goldenTags) {
    const old = beforeReload.includes(tag);
    test(`golden snapshot ${tag} ${old ? "(old SDK) keeps KVM_SET_XSAVE" : "(reloading SDK) resumes at vmlet__resume; its record is fixed where it does not fit"}`, async () => {
      const snap = await Snapshot.load(golden, tag);
      const image = snap.image.view, cpu = snap.state.cpu;
      const spy = spyRestoreSource();
      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: goldenHosts });
      try {
        const vm = vmOf(sb);
        const here = fpuResume(image, cpu, vm.backend.flavour, vm.guestXcr0);
        sb.restore(snap);
        if (old) {
          assert.deepEqual(here, { reloads: false });
          assert.deepEqual(fpuResume(image, cpu, "hardware", 0), { reloads: false });
          assert.deepEqual(spy.lengths, [cpu.xsave.length]);
          return;
        }
        const rip = Number(cpu.rip), mark = new DataView(image.buffer, image.byteOffset).getUint32(Number(cpu.gprs[6]!) + FPU_MARK, true);
        assert.deepEqual([...image.subarray(rip, rip + RESUME_SEQUENCE.length)], [...RESUME_SEQUENCE]);
        assert.deepEqual(fpuResume(image, cpu, "hardware", 0), mark === 0 ? { reloads: true } : { reloads: true, fixMarkAt: Number(cpu.gprs[6]!) + FPU_MARK });
        assert.equal(spy.lengths.length, 1);
        assert.equal(spy.lengths[0], here.reloads ? 0 : cpu.xsave.length);
        assert.equal(typeof sb.callSync("get_marker"), "number", "it runs after the restore");
      } finally {
        spy.restore();
        sb.close();
      }
    });
  }

  test("restoring a new-SDK snapshot registers no XSAVE area (native skips KVM_SET_XSAVE); forced, it does", async () => {
    const { sb, snap } = await fpuSnapshot();
    const spy = spyRestoreSource();
    try {
      scribble(sb);
      sb.restore(snap);
      const skipped = 0;
      assert.deepEqual(spy.lengths, [skipped]);
      scribble(sb);
      sb.restore(snap, { deferred: true });
      assertSnapshotFpu(sb, "deferred");
      assert.deepEqual(spy.lengths, [skipped], "the same source is registered once");
      setGuestFpuReload(false);
      const forced = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        scribble(forced);
        forced.restore(snap);
        assertSnapshotFpu(forced, "forced");
        assert.deepEqual(spy.lengths, [skipped, snap.state.cpu.xsave.length]);
      } finally {
        setGuestFpuReload(true);
        forced.close();
      }
    } finally {
      spy.restore();
      sb.close();
    }
  });
});
