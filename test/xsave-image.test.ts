/**
 * Snapshots whose FPU image names XSAVE components this host's vCPUs lack load anyway
 * (issue 11, "Snapshots on other CPUs"): the committed golden snapshots were taken where the
 * guest's XSTATE_BV held PKRU (0x202), and KVM_SET_XSAVE on an AMD EPYC host (XCR0 0xe7, no
 * PKRU) refused them with EINVAL. xsaveForHost drops what the host lacks; the image KVM gets
 * names only supported components. (The ioctl itself needs /dev/kvm: golden-snapshots.test.ts
 * runs it on KVM machines.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { supportedXsaveComponents, xsaveForHost } from "../src/hypervisor/kvm/xsave-image.js";
import { Snapshot } from "../src/index.js";
import { repoRoot } from "./helpers.js";

const bv = (x: Uint8Array): bigint => new DataView(x.buffer, x.byteOffset).getBigUint64(512, true);

test("a golden snapshot's image (PKRU in XSTATE_BV) becomes one a host without PKRU takes; the snapshot is untouched", async () => {
  const snapshot = await Snapshot.load(`${repoRoot}/test/golden/snapshots`, "basic-v1");
  const image = snapshot.state.cpu.xsave;
  assert.equal(bv(image), 0x202n, "the golden names PKRU");
  const before = image.slice();
  const amd = xsaveForHost(image, 0xe7n);
  assert.equal(bv(amd), 0x2n);
  assert.deepEqual(amd.subarray(2688, 2696), new Uint8Array(8), "PKRU's bytes are zero");
  assert.deepEqual(amd.subarray(0, 512), image.subarray(0, 512), "x87 and SSE state kept");
  assert.deepEqual(image, before, "the snapshot's own image is not changed");
  assert.equal(xsaveForHost(image, 0x207n), image, "a host with PKRU takes it as it is (no copy)");
});

test("every dropped component is zeroed, kept ones are not; x87 and SSE are never dropped", () => {
  const image = new Uint8Array(4096).fill(0xab);
  new DataView(image.buffer).setBigUint64(512, 0x2e7n, true); // x87 SSE AVX, AVX-512 (5–7), PKRU
  image.fill(0, 520, 576);
  const out = xsaveForHost(image, 0x0n);
  assert.equal(bv(out), 0x3n);
  for (const [offset, size] of [[576, 256], [1088, 64], [1152, 512], [1664, 1024], [2688, 8]] as const) {
    assert.ok(out.subarray(offset, offset + size).every((b) => b === 0), `component at ${offset} zeroed`);
  }
  assert.ok(out.subarray(0, 512).every((b) => b === 0xab), "legacy area kept");
  const avxHost = xsaveForHost(image, 0x7n);
  assert.equal(bv(avxHost), 0x7n);
  assert.ok(avxHost.subarray(576, 832).every((b) => b === 0xab), "AVX kept where the host has it");
});

test("the supported components come from CPUID leaf 0xD subleaf 0 (EDX:EAX) of KVM_GET_SUPPORTED_CPUID", () => {
  const entries = new Uint8Array(3 * 40);
  const view = new DataView(entries.buffer);
  const entry = (i: number, fn: number, index: number, eax: number, edx: number): void => {
    view.setUint32(i * 40, fn, true);
    view.setUint32(i * 40 + 4, index, true);
    view.setUint32(i * 40 + 12, eax, true);
    view.setUint32(i * 40 + 24, edx, true);
  };
  entry(0, 0, 0, 0xd, 0);
  entry(1, 0xd, 1, 0xf, 0);
  entry(2, 0xd, 0, 0xe7, 0x1);
  assert.equal(supportedXsaveComponents(entries, 3), 0x1_0000_00e7n);
  assert.equal(supportedXsaveComponents(entries, 2), 0x3n, "no leaf 0xD: x87 and SSE");
});
