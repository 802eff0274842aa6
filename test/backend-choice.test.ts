/**
 * Choosing a backend: the `backend` option of the builder, fromSnapshot and the pool,
 * VMLET_BACKEND, and "auto", which takes KVM only where /dev/kvm answers KVM ioctls (a
 * device masked with /dev/null counts as missing). A snapshot resumes on either backend.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { backendAvailability } from "../src/hypervisor/backend.js";
import { BackendUnavailableError, InvalidConfigError, Sandbox, SandboxBuilder, SandboxPool } from "../src/index.js";
import { guestPath, repoRoot } from "./helpers.js";

const kvmWorks = backendAvailability().find((b) => b.name === "kvm")!.works;
const demo = (): SandboxBuilder => new SandboxBuilder().guest(guestPath("demo"));

test("the builder's backend option picks the backend, and sb.backend says which one ran", async () => {
  const sb = await demo().backend("process").build();
  try {
    assert.deepEqual(sb.backend, { name: "process", flavour: "seccomp" });
    assert.equal(sb.callSync("add", 2, 40), 42);
  } finally {
    sb.close();
  }
});

test("asking for KVM where it does not work is BACKEND_UNAVAILABLE, never a silent fallback", { skip: kvmWorks ? "this machine has KVM" : false }, async () => {
  await assert.rejects(demo().backend("kvm").build(), (error: unknown) => {
    assert.ok(error instanceof BackendUnavailableError, String(error));
    assert.match(error.message, /kvm/i);
    return true;
  });
});

test("an unknown backend is INVALID_CONFIG naming the option", async () => {
  await assert.rejects(demo().backend("xen" as never).build(), (error: unknown) => error instanceof InvalidConfigError && /backend/.test(error.message));
  const sb = await demo().build();
  const snap = sb.snapshot();
  sb.close();
  await assert.rejects(Sandbox.fromSnapshot(snap, { backend: "qemu" as never }), InvalidConfigError);
  assert.throws(() => new SandboxPool(snap, { backend: 1 as never }), InvalidConfigError);
});

test("VMLET_BACKEND sets the default, and a bad value is INVALID_CONFIG", () => {
  const run = (value: string): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "demo"], { encoding: "utf8", timeout: 60_000, env: { ...process.env, VMLET_BACKEND: value } });
  const ok = run("process");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /process/);
  const bad = run("xen");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /INVALID_CONFIG|VMLET_BACKEND/);
});

test("a snapshot taken on one backend resumes on every backend this machine has, and so does a pool", async () => {
  const backends = backendAvailability().filter((b) => b.works).map((b) => b.name);
  for (const from of backends) {
    const sb = await demo().backend(from).build();
    sb.callSync("add", 1, 1);
    const snap = sb.snapshot();
    sb.close();
    for (const to of backends) {
      const other = await Sandbox.fromSnapshot(snap, { backend: to });
      try {
        assert.equal(other.backend.name, to);
        assert.equal(other.callSync("add", 20, 22), 42, `${from} → ${to}`);
      } finally {
        other.close();
      }
      const pool = new SandboxPool(snap, { size: 1, backend: to });
      try {
        assert.equal(await pool.run((s) => s.callSync("add", 3, 4)), 7);
      } finally {
        await pool.close();
      }
    }
  }
});

test("a /dev/kvm masked with a file that does not answer KVM ioctls counts as missing", { skip: process.getuid?.() !== 0 ? "needs root for a private mount namespace" : false }, (t) => {
  // In a private mount namespace: a tmpfs over /dev holding a plain file as /dev/kvm (opens, answers no ioctl).
  const script = `
    const m = await import(${JSON.stringify(path.join(repoRoot, "dist/src/hypervisor/backend.js"))});
    const kvm = m.backendAvailability().find((b) => b.name === "kvm");
    let explicit = "";
    try { m.backendInfo("kvm"); } catch (e) { explicit = e.code + ": " + e.message; }
    console.log(JSON.stringify({ kvm, auto: m.backendInfo().name, explicit }));`;
  const r = spawnSync("unshare", ["-m", "sh", "-c", `mount -t tmpfs tmpfs /dev && touch /dev/kvm && mknod -m 666 /dev/null c 1 3 && exec "${process.execPath}" --input-type=module -e '${script.replace(/'/g, "'\\''")}'`], { encoding: "utf8", timeout: 60_000 });
  if (r.error || (r.status !== 0 && /unshare|mount/.test(r.stderr))) {
    t.skip(`no private mount namespace here: ${r.error?.message ?? r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { kvm: { works: boolean; why: string }; auto: string; explicit: string };
  assert.equal(out.kvm.works, false);
  assert.match(out.kvm.why, /does not answer KVM ioctls/);
  assert.equal(out.auto, "process");
  assert.match(out.explicit, /^BACKEND_UNAVAILABLE: \/dev\/kvm opens but does not answer KVM ioctls/);
});
