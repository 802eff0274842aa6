/**
 * Snapshot layouts with real OCI tools: skopeo copies a layout (oci: to oci:, and through
 * a local docker-registry and back) and umoci collects garbage in one, and vmlet still
 * loads, checks and runs the result. Each test is skipped only when its tool is absent
 * (scripts/install-system-deps.sh installs skopeo, umoci and docker-registry); KVM is
 * required as everywhere.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { Sandbox, SandboxBuilder, Snapshot, SnapshotLayout } from "../src/index.js";
import { guestPath } from "./helpers.js";

const execFileAsync = promisify(execFile);

/** Absolute path of an executable on PATH, or undefined. */
function toolPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const file = path.join(dir || ".", name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function run(tool: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(tool, args, { timeout: 30_000, maxBuffer: 16 << 20 });
    return stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new Error(`${path.basename(tool)} ${args.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}`, { cause: error });
  }
}

/** skopeo with no signature policy file needed (the test copies its own local images). */
const skopeo = (...args: string[]): Promise<string> => run(toolPath("skopeo")!, ["--insecure-policy", ...args]);

type Obj = Record<string, unknown>;
const readJson = (file: string): Obj => JSON.parse(fs.readFileSync(file, "utf8")) as Obj;
const blobNames = (dir: string): string[] => fs.readdirSync(path.join(dir, "blobs/sha256")).sort();

/** The index entries of a layout as [tag, manifest digest] pairs, read without vmlet. */
function tags(dir: string): Array<[string | undefined, string]> {
  return (readJson(path.join(dir, "index.json")).manifests as Obj[]).map((d) => [
    (d.annotations as Record<string, string> | undefined)?.["org.opencontainers.image.ref.name"], d.digest as string,
  ]);
}

/** Hex names of the blobs one manifest needs (itself, its config, its layers), read without vmlet. */
function blobsOf(dir: string, manifestDigest: string): string[] {
  const hex = (digest: string): string => digest.slice("sha256:".length);
  const manifest = readJson(path.join(dir, "blobs/sha256", hex(manifestDigest)));
  const layers = (manifest.layers as Obj[]).map((l) => hex(l.digest as string));
  return [hex(manifestDigest), hex((manifest.config as Obj).digest as string), ...layers].sort();
}

let root: string;
/** Counter 3, heap pattern 7. */
let first: Snapshot;
/** Counter 4, heap pattern 11, 8 scratch pages of 9: shares only the guest ELF with `first`. */
let second: Snapshot;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-oci-tools-"));
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).heapSize(1 << 20).build();
  try {
    for (let i = 0; i < 3; i++) sb.callSync("bump");
    assert.equal(sb.callSync("heap_fill", 20000, 7), true);
    first = sb.snapshot();
    sb.callSync("bump");
    assert.equal(sb.callSync("heap_fill", 30000, 11), true);
    sb.callSync("touch_pages", 8, 9);
    second = sb.snapshot();
  } finally {
    sb.close();
  }
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** checkedLoad (every digest verified), a sandbox from it, and the saved state. */
async function assertRuns(dir: string, ref: string, which: "first" | "second"): Promise<void> {
  const snap = await Snapshot.checkedLoad(dir, ref);
  const sb = await Sandbox.fromSnapshot(snap);
  try {
    if (which === "first") {
      assert.equal(sb.callSync("get_counter"), 3);
      assert.equal(sb.callSync("heap_check", 7), true);
      assert.equal(sb.callSync("scratch_sum"), 0);
    } else {
      assert.equal(sb.callSync("get_counter"), 4);
      assert.equal(sb.callSync("heap_check", 11), true);
      assert.equal(sb.callSync("scratch_sum"), 8 * 9);
    }
    assert.equal(sb.callSync("bump"), which === "first" ? 4 : 5, "the sandbox runs on");
  } finally {
    sb.close();
  }
}

test("skopeo copy oci:A:tag oci:B:tag: vmlet loads B, the sandbox has the saved state, the digest is kept", async (t) => {
  if (!toolPath("skopeo")) return t.skip("skopeo not installed (scripts/install-system-deps.sh installs it)");
  const a = path.join(root, "copy-A");
  const b = path.join(root, "copy-B");
  const digest = await first.save(a, "v1", { guestName: "snapshot.elf" });
  await skopeo("copy", "-q", `oci:${a}:v1`, `oci:${b}:v1`);

  assert.deepEqual(tags(b), [["v1", digest]], "same tag, same manifest digest");
  assert.deepEqual(blobNames(b), blobNames(a), "every blob copied, nothing else");
  const lazy = await Snapshot.load(b, "v1");
  const sb = await Sandbox.fromSnapshot(lazy);
  try {
    assert.equal(sb.callSync("get_counter"), 3);
    assert.equal(sb.callSync("heap_check", 7), true);
  } finally {
    sb.close();
  }
  await assertRuns(b, "v1", "first");
  await assertRuns(b, digest, "first");
  const report = await new SnapshotLayout(b).verify();
  assert.ok(report.ok, JSON.stringify(report.problems));
  assert.deepEqual(new SnapshotLayout(b).list().map((l) => [l.tag, l.digest, l.guest]), [["v1", digest, "snapshot.elf"]]);

  // vmlet writes into the layout skopeo made, and keeps skopeo's entry.
  const digest2 = await second.save(b, "v2");
  assert.deepEqual(tags(b), [["v1", digest], ["v2", digest2]]);
  await assertRuns(b, "v2", "second");
});

test("umoci gc after SnapshotLayout.remove keeps what the remaining tag needs and drops the removed tag's blobs", async (t) => {
  const umoci = toolPath("umoci");
  if (!umoci) return t.skip("umoci not installed (scripts/install-system-deps.sh installs it)");
  const dir = path.join(root, "gc");
  const d1 = await first.save(dir, "v1");
  const d2 = await second.save(dir, "v2");
  const keep = blobsOf(dir, d2);
  const gone = blobsOf(dir, d1).filter((b) => !keep.includes(b));
  assert.equal(gone.length, 3, "v1's manifest, config and memory are its own; the guest ELF is shared");
  assert.deepEqual(blobNames(dir), [...new Set([...keep, ...gone])].sort());

  assert.equal(await new SnapshotLayout(dir).remove("v1"), true);
  // What a crashed vmlet writer leaves in the layout root, next to the lock file.
  const temp = path.join(dir, ".tmp-0123456789abcdef");
  fs.writeFileSync(temp, "partial");
  assert.ok(fs.existsSync(path.join(dir, ".vmlet.lock")));

  await run(umoci, ["gc", "--layout", dir]);
  assert.deepEqual(blobNames(dir), keep, "exactly v2's blobs remain");
  assert.equal((await run(umoci, ["ls", "--layout", dir])).trim(), "v2");
  await assertRuns(dir, "v2", "second");
  await assertRuns(dir, d2, "second");
  await assert.rejects(Snapshot.load(dir, "v1"), (e: unknown) => (e as { code?: string }).code === "SNAPSHOT_NOT_FOUND");
  const report = await new SnapshotLayout(dir).verify();
  assert.ok(report.ok, JSON.stringify(report.problems));

  // vmlet's own gc finds nothing more to delete than the temp, and the layout stays writable.
  const gc = await new SnapshotLayout(dir).gc();
  assert.deepEqual(gc.removedBlobs, []);
  assert.equal(gc.removedTempFiles, 1);
  assert.equal(fs.existsSync(temp), false);
  assert.equal(await first.save(dir, "v1"), d1);
  await assertRuns(dir, "v1", "first");
  await run(umoci, ["gc", "--layout", dir]);
  assert.deepEqual(blobNames(dir), [...new Set([...keep, ...gone])].sort(), "umoci keeps both tags' blobs");
});

/** A free TCP port on 127.0.0.1 (closed again; the registry binds it right after). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** docker-registry on 127.0.0.1:<free port> with filesystem storage under `dir`. */
async function startRegistry(binary: string, dir: string): Promise<{ proc: ChildProcess; address: string; log: () => string }> {
  const port = await freePort();
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, [
    "version: 0.1",
    "log:",
    "  level: warn",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${path.join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "  secret: vmlet-test",
    "",
  ].join("\n"));
  const proc = spawn(binary, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout!.setEncoding("utf8").on("data", (s: string) => (output += s));
  proc.stderr!.setEncoding("utf8").on("data", (s: string) => (output += s));
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`docker-registry exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output}`);
    try {
      const response = await fetch(`http://${address}/v2/`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`docker-registry on ${address} was not ready within 15 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { proc, address, log: () => output };
}

async function stopRegistry(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000)))]);
  clearTimeout(timer);
  if (!gone) {
    proc.kill("SIGKILL");
    await exited;
  }
}

test("skopeo push to a local docker-registry and pull back: same manifest digest, checkedLoad, runs", async (t) => {
  const registry = toolPath("docker-registry");
  if (!toolPath("skopeo")) return t.skip("skopeo not installed (scripts/install-system-deps.sh installs it)");
  if (!registry) return t.skip("docker-registry not installed (scripts/install-system-deps.sh installs it)");
  const a = path.join(root, "push-A");
  const c = path.join(root, "pull-C");
  const storage = fs.mkdtempSync(path.join(root, "registry-"));
  const digest = await second.save(a, "v2", { guestName: "snapshot.elf" });

  const { proc, address, log } = await startRegistry(registry, storage);
  try {
    const ref = `docker://${address}/vmlet/snapshot:v2`;
    await skopeo("copy", "-q", "--dest-tls-verify=false", `oci:${a}:v2`, ref);
    const raw = await skopeo("inspect", "--raw", "--tls-verify=false", ref);
    assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, digest, "the registry serves the manifest vmlet wrote, byte for byte");
    await skopeo("copy", "-q", "--src-tls-verify=false", ref, `oci:${c}:v2`);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nregistry log:\n${log()}`, { cause: error });
  } finally {
    await stopRegistry(proc);
  }

  assert.deepEqual(tags(c), [["v2", digest]], "same tag, same manifest digest after the round trip");
  assert.deepEqual(blobNames(c), blobNames(a));
  await assertRuns(c, "v2", "second");
  const report = await new SnapshotLayout(c).verify();
  assert.ok(report.ok, JSON.stringify(report.problems));
});

/** A layout with v1 (one memory layer) and v2 = a diff layer over v1's: the layered case of the tests above. */
async function layered(dir: string): Promise<{ d1: string; d2: string }> {
  const d1 = await first.save(dir, "v1", { guestName: "snapshot.elf" });
  const d2 = await second.save(dir, "v2", { guestName: "snapshot.elf", base: "v1" });
  const layers = (readJson(path.join(dir, "blobs/sha256", d2.slice("sha256:".length))).layers as Obj[]).map((l) => l.mediaType);
  assert.deepEqual(layers, ["application/vnd.vmlet.snapshot.memory.v1", "application/vnd.vmlet.snapshot.memory-diff.v1", "application/vnd.vmlet.snapshot.guest-elf.v1"]);
  return { d1, d2 };
}

test("a layered snapshot through skopeo copy oci:A oci:B: the chain arrives whole, loads and runs", async (t) => {
  if (!toolPath("skopeo")) return t.skip("skopeo not installed (scripts/install-system-deps.sh installs it)");
  const a = path.join(root, "layered-A");
  const b = path.join(root, "layered-B");
  const { d2 } = await layered(a);
  await skopeo("copy", "-q", `oci:${a}:v2`, `oci:${b}:v2`);
  assert.deepEqual(tags(b), [["v2", d2]]);
  assert.deepEqual(blobNames(b), blobsOf(a, d2), "v2's blobs, the base's memory layer among them");
  await assertRuns(b, "v2", "second");
  const report = await new SnapshotLayout(b).verify();
  assert.ok(report.ok, JSON.stringify(report.problems));
});

test("umoci gc on a layered layout keeps the base layer a remaining diff needs", async (t) => {
  const umoci = toolPath("umoci");
  if (!umoci) return t.skip("umoci not installed (scripts/install-system-deps.sh installs it)");
  const dir = path.join(root, "layered-gc");
  const { d1, d2 } = await layered(dir);
  const keep = blobsOf(dir, d2);
  assert.ok(blobsOf(dir, d1).filter((b) => !keep.includes(b)).length === 2, "only v1's manifest and config are its own");
  assert.equal(await new SnapshotLayout(dir).remove("v1"), true);
  await run(umoci, ["gc", "--layout", dir]);
  assert.deepEqual(blobNames(dir), keep, "v2's blobs remain, the base layer included");
  await assertRuns(dir, "v2", "second");
  assert.deepEqual((await new SnapshotLayout(dir).gc()).removedBlobs, [], "vmlet's gc agrees");
  assert.ok((await new SnapshotLayout(dir).verify()).ok);
});

test("a layered snapshot pushed to a local docker-registry and pulled back: same digest, checkedLoad, runs", async (t) => {
  const registry = toolPath("docker-registry");
  if (!toolPath("skopeo")) return t.skip("skopeo not installed (scripts/install-system-deps.sh installs it)");
  if (!registry) return t.skip("docker-registry not installed (scripts/install-system-deps.sh installs it)");
  const a = path.join(root, "layered-push");
  const c = path.join(root, "layered-pull");
  const { d2 } = await layered(a);
  const { proc, address, log } = await startRegistry(registry, fs.mkdtempSync(path.join(root, "registry-")));
  try {
    const ref = `docker://${address}/vmlet/layered:v2`;
    await skopeo("copy", "-q", "--dest-tls-verify=false", `oci:${a}:v2`, ref);
    await skopeo("copy", "-q", "--src-tls-verify=false", ref, `oci:${c}:v2`);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nregistry log:\n${log()}`, { cause: error });
  } finally {
    await stopRegistry(proc);
  }
  assert.deepEqual(tags(c), [["v2", d2]]);
  assert.deepEqual(blobNames(c), blobsOf(a, d2));
  await assertRuns(c, "v2", "second");
  assert.ok((await new SnapshotLayout(c).verify()).ok);
});
