/**
 * FPU/SSE state on restore. Guests built with the current SDK reload their FPU state from
 * the snapshot's memory as the first instruction after resuming (vmlet__ready,
 * guest/src/start.S), so restores on hardware KVM skip KVM_SET_XSAVE (on PVM the guest
 * also reaches AVX and PKRU, which that reload does not cover, so they keep it). Whatever the guest leaves in xmm15,
 * MXCSR or the x87 control word before a restore must not survive it: on every restore
 * path, with the reload and with KVM_SET_XSAVE forced, the snapshot's values come back.
 * Decisions are checked on the bytes and on what reaches the native restore, never on time.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { GuestFaultError, Sandbox, Snapshot, type HostFunctionDefinition } from "../src/index.js";
import { backendInfo } from "../src/hypervisor/backend.js";
import { cpuinfoHasFxsaveLeak, reloadsFpuOnResume, setGuestFpuReload, xsaveToLoad } from "../src/hypervisor/fpu-reload.js";
import { KvmVcpu } from "../src/hypervisor/kvm/vcpu.js";
import type { CpuState } from "../src/hypervisor/virtual-machine.js";
import { repoRoot, requireKvm } from "./helpers.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

requireKvm();
after(() => setGuestFpuReload(true));

const XMM = 0x1234_5678_9abc_def0n;
const MXCSR = 0x1f80 | (3 << 13); // all exceptions masked, round toward zero
const X87_CW = 0x037f & ~0x0300; // all exceptions masked, 24-bit precision
const DEFAULT_MXCSR = 0x1f80;
const DEFAULT_X87_CW = 0x037f;
/** Restores skip KVM_SET_XSAVE on hardware KVM only (on PVM the guest reaches AVX and PKRU). */
const skips = backendInfo().flavour === "hardware";

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

    test("AVX (upper half of ymm15) and PKRU, which fxrstor64 does not load: unreachable (#UD) or restored", withMode(async () => {
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

  test("a snapshot of a freshly built guest resumes at fxrstor64 (%rsp); a changed byte or RSP does not", async () => {
    const { sb, snap } = await fpuSnapshot();
    try {
      const image = snap.image.view, cpu = snap.state.cpu;
      assert.equal(reloadsFpuOnResume(image, cpu), true);
      assert.equal(reloadsFpuOnResume(image, cpu), true, "cached");
      const rip = Number(cpu.rip);
      assert.deepEqual([...image.subarray(rip, rip + 5)], [0x48, 0x0f, 0xae, 0x0c, 0x24]);
      for (let i = 0; i < 5; i++) {
        const copy = image.slice();
        copy[rip + i]! ^= 0x01;
        assert.equal(reloadsFpuOnResume(copy, cpu), false, `byte ${i} changed`);
      }
      const gprs = cpu.gprs.slice();
      gprs[6] = gprs[6]! + 8n;
      assert.equal(reloadsFpuOnResume(image, { ...cpu, gprs } as CpuState), false, "RSP not 16-byte aligned");
      assert.equal(reloadsFpuOnResume(image, { ...cpu, rip: BigInt(image.length - 2) } as CpuState), false, "RIP at the end of memory");
      assert.equal(xsaveToLoad(image, cpu, "hardware").length, 0, "hardware KVM: no KVM_SET_XSAVE");
      assert.equal(xsaveToLoad(image, cpu, "pvm"), cpu.xsave, "PVM: the guest reaches AVX and PKRU, so KVM_SET_XSAVE");
      setGuestFpuReload(false);
      assert.equal(reloadsFpuOnResume(image, cpu), false, "switched off");
      assert.equal(xsaveToLoad(image, cpu, "hardware"), cpu.xsave, "switched off");
      setGuestFpuReload(true);
    } finally {
      sb.close();
    }
  });

  const goldenTags = Object.keys(JSON.parse(fs.readFileSync(path.join(repoRoot, "test/golden/expected.json"), "utf8")) as object);
  test("there are golden snapshots to check", () => assert.ok(goldenTags.length > 0));
  for (const tag of goldenTags) {
    test(`golden snapshot ${tag} (old SDK) keeps KVM_SET_XSAVE`, async () => {
      const snap = await Snapshot.load(golden, tag);
      assert.equal(reloadsFpuOnResume(snap.image.view, snap.state.cpu), false);
      const spy = spyRestoreSource();
      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: goldenHosts });
      try {
        sb.restore(snap);
        assert.deepEqual(spy.lengths, [snap.state.cpu.xsave.length]);
        assert.ok(spy.lengths[0]! > 0);
      } finally {
        spy.restore();
        sb.close();
      }
    });
  }

  test(`restoring a new-SDK snapshot registers ${skips ? "no XSAVE area (native skips KVM_SET_XSAVE)" : "the XSAVE area (this is PVM)"}; forced, it does`, async () => {
    const { sb, snap } = await fpuSnapshot();
    const spy = spyRestoreSource();
    try {
      scribble(sb);
      sb.restore(snap);
      const skipped = skips ? 0 : snap.state.cpu.xsave.length;
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
