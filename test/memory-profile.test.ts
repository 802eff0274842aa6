/**
 * Memory profiles (guests/profiled.c, built with profiling on): sb.memoryProfile() is a
 * gzip-compressed pprof profile that pprof-format decodes, with the guest's allocation sites
 * named by function and line and their alloc/in-use object and byte totals — for a sandbox
 * built from the ELF, and for one made from a snapshot saved to disk and loaded (the sites
 * counted before the snapshot are kept). A guest built without profiling says so; a guest
 * that scribbles on its table gets a typed error or a profile without the bad records.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { after, test } from "node:test";
import { Profile } from "pprof-format";
import { GuestProtocolError, InvalidConfigError, Sandbox, SandboxBuilder, SandboxClosedError, Snapshot } from "../src/index.js";
import { PROFILE_TABLE, readProfileTable } from "../src/debug/profile-table.js";
import { guestPath, repoRoot } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-profile-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const source = fs.readFileSync(path.join(repoRoot, "guests/profiled.c"), "utf8").split("\n");
/** The line of profiled.c that carries a marker comment. */
const lineOf = (marker: string): number => source.findIndex((l) => l.includes(marker)) + 1;

interface Site { frames: Array<[string, number]>; files: string[]; allocObjects: number; allocBytes: number; inuseObjects: number; inuseBytes: number }

/** Decodes a profile and lists its samples with their frames as [function, line], innermost first. */
function decode(bytes: Uint8Array): { profile: Profile; sites: Site[]; text: (i: number | bigint) => string } {
  const profile = Profile.decode(gunzipSync(bytes));
  const text = (i: number | bigint): string => profile.stringTable.strings[Number(i)] ?? "";
  const functions = new Map(profile.function.map((f) => [Number(f.id), f]));
  const locations = new Map(profile.location.map((l) => [Number(l.id), l]));
  const sites = profile.sample.map((s) => {
    const lines = s.locationId.map((id) => locations.get(Number(id))?.line[0]);
    const frames = lines.map((line): [string, number] => [text(functions.get(Number(line?.functionId ?? 0))?.name ?? 0), Number(line?.line ?? 0)]);
    const files = lines.map((line) => text(functions.get(Number(line?.functionId ?? 0))?.filename ?? 0));
    const [allocObjects, allocBytes, inuseObjects, inuseBytes] = s.value.map(Number);
    return { frames, files, allocObjects: allocObjects ?? 0, allocBytes: allocBytes ?? 0, inuseObjects: inuseObjects ?? 0, inuseBytes: inuseBytes ?? 0 };
  });
  return { profile, sites, text };
}

/** The sample whose innermost frame is function:line (exactly one). */
function siteAt(sites: Site[], fn: string, marker: string): Site {
  const line = lineOf(marker);
  const found = sites.filter((s) => s.frames[0]?.[0] === fn && s.frames[0][1] === line);
  assert.equal(found.length, 1, `one site at ${fn}:${line} (${marker}); sites: ${JSON.stringify(sites.map((s) => s.frames[0]))}`);
  return found[0] as Site;
}

const totals = (s: Site): number[] => [s.allocObjects, s.allocBytes, s.inuseObjects, s.inuseBytes];
const profiled = (): Promise<Sandbox> => new SandboxBuilder().guest(guestPath("profiled")).build();

test("the profile names each allocation site by function and line, with alloc and in-use totals", async () => {
  const sb = await profiled();
  try {
    sb.callSync("alloc_kept", 5);
    sb.callSync("alloc_freed", 7);
    sb.callSync("alloc_grown", 64);
    const { profile, sites, text } = decode(sb.memoryProfile());
    assert.deepEqual(profile.sampleType.map((t) => `${text(t.type)}/${text(t.unit)}`), ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"]);
    assert.equal(text(profile.defaultSampleType), "inuse_space");

    const kept = siteAt(sites, "keep_blocks", "PROFILED_KEEP");
    assert.deepEqual(totals(kept), [5, 500, 5, 500]);
    assert.ok(kept.files[0]?.endsWith("guests/profiled.c"), kept.files[0]);
    assert.deepEqual(kept.frames.slice(-3, -1).map(([fn]) => fn), ["dispatch", "vmlet__main"], "the walk goes through the runtime");
    assert.ok(kept.files.at(-1)?.endsWith("guest/src/start.S"), "and ends in _start (start.S)");
    assert.equal(kept.frames.at(-1)?.[0], "_start", "named: start.S gives _start a function symbol");
    assert.deepEqual(totals(siteAt(sites, "temporary", "PROFILED_TEMPORARY")), [7, 336, 0, 0]);
    assert.deepEqual(totals(siteAt(sites, "zeroed_table", "PROFILED_CALLOC")), [1, 64, 0, 0], "realloc moved the block: the calloc site holds none");
    const grown = siteAt(sites, "grown", "PROFILED_REALLOC");
    assert.deepEqual(totals(grown), [1, 128, 1, 128]);
    assert.equal(grown.frames[1]?.[0], "vmlet__wrap_alloc_grown", "the caller of grown()");
    const temporaryCaller = siteAt(sites, "temporary", "PROFILED_TEMPORARY").frames[1];
    assert.equal(temporaryCaller?.[0], "vmlet__wrap_alloc_freed");

    sb.callSync("release_kept");
    const released = decode(sb.memoryProfile()).sites;
    assert.deepEqual(totals(siteAt(released, "keep_blocks", "PROFILED_KEEP")), [5, 500, 0, 0], "freed: still allocated, no longer in use");
    assert.deepEqual(totals(siteAt(released, "grown", "PROFILED_REALLOC")), [1, 128, 0, 0]);
  } finally {
    sb.close();
  }
});

test("a sandbox from a snapshot saved to disk and loaded keeps the sites counted before the snapshot", async () => {
  const built = await profiled();
  built.callSync("alloc_kept", 3);
  built.callSync("alloc_freed", 2);
  const layout = path.join(dir, "layout");
  await built.snapshot().save(layout, "profiled");
  built.close();
  const sb = await Sandbox.fromSnapshot(await Snapshot.load(layout, "profiled"));
  try {
    const before = decode(sb.memoryProfile()).sites;
    assert.deepEqual(totals(siteAt(before, "keep_blocks", "PROFILED_KEEP")), [3, 300, 3, 300]);
    assert.deepEqual(totals(siteAt(before, "temporary", "PROFILED_TEMPORARY")), [2, 96, 0, 0]);
    sb.callSync("alloc_kept", 2);
    sb.callSync("alloc_freed", 1);
    const afterCalls = decode(sb.memoryProfile()).sites;
    assert.deepEqual(totals(siteAt(afterCalls, "keep_blocks", "PROFILED_KEEP")), [5, 500, 5, 500]);
    assert.deepEqual(totals(siteAt(afterCalls, "temporary", "PROFILED_TEMPORARY")), [3, 144, 0, 0]);
  } finally {
    sb.close();
  }
});

test("restore() takes the profile back to the snapshot's", async () => {
  const sb = await profiled();
  try {
    sb.callSync("alloc_kept", 1);
    const snap = sb.snapshot();
    sb.callSync("alloc_kept", 4);
    assert.deepEqual(totals(siteAt(decode(sb.memoryProfile()).sites, "keep_blocks", "PROFILED_KEEP")), [5, 500, 5, 500]);
    sb.restore(snap);
    assert.deepEqual(totals(siteAt(decode(sb.memoryProfile()).sites, "keep_blocks", "PROFILED_KEEP")), [1, 100, 1, 100]);
  } finally {
    sb.close();
  }
});

test("a guest built without profiling has no profile (InvalidConfigError); a closed sandbox says so", async () => {
  const sb = await new SandboxBuilder().guest(guestPath("profiled-off")).build();
  assert.equal(sb.callSync("alloc_kept", 2), 2, "the same guest runs without profiling");
  assert.throws(() => sb.memoryProfile(), (e: unknown) => e instanceof InvalidConfigError && /VMLET_PROFILE=1/.test(e.message));
  sb.close();
  assert.throws(() => sb.memoryProfile(), SandboxClosedError);
});

test("a guest that scribbles on its table gets a typed error, or a profile without the bad records", async () => {
  const sb = await profiled();
  const poke = (offset: number, value: bigint): unknown => sb.callSync("poke_table", offset, value);
  const slot = (i: number, field: number): number => PROFILE_TABLE.header.size + i * (PROFILE_TABLE.site.pcs + 8 * 32) + field;
  try {
    sb.callSync("alloc_kept", 2);
    // A site claiming more frames than the table holds, and one with more in use than allocated.
    poke(slot(1000, PROFILE_TABLE.site.frames), 999n);
    poke(slot(1001, PROFILE_TABLE.site.allocObjects), 1n);
    poke(slot(1001, PROFILE_TABLE.site.frames), 1n);
    poke(slot(1001, PROFILE_TABLE.site.inuseObjects), 2n);
    poke(slot(1002, PROFILE_TABLE.site.allocObjects), 2n ** 60n);
    poke(slot(1002, PROFILE_TABLE.site.frames), 1n);
    const { profile, sites, text } = decode(sb.memoryProfile());
    assert.deepEqual(totals(siteAt(sites, "keep_blocks", "PROFILED_KEEP")), [2, 200, 2, 200], "the honest sites are all there");
    assert.ok(profile.comment.map(text).some((c) => /3 malformed site record/.test(c)), "the profile says what it left out");

    // Header words, 8 bytes at a time: the second word of each keeps its honest value.
    for (const [offset, value, message] of [
      [PROFILE_TABLE.header.magic, 0x41414141n | (1n << 32n), /bad magic/],
      [PROFILE_TABLE.header.depth, 1n << 20n, /depth/],
      [PROFILE_TABLE.header.sites, 0xffffffffn | (32n << 32n), /do not fit/],
    ] as const) {
      const snap = sb.snapshot();
      poke(offset, value);
      assert.throws(() => sb.memoryProfile(), (e: unknown) => e instanceof GuestProtocolError && message.test(e.message), String(message));
      assert.equal(sb.callSync("alloc_kept", 1), 3, "the sandbox is not poisoned by it");
      sb.restore(snap);
    }
  } finally {
    sb.close();
  }
});

test("random tables are read or refused with GuestProtocolError, never anything else", () => {
  const size = PROFILE_TABLE.header.size + 4 * (PROFILE_TABLE.site.pcs + 8 * 4);
  let seed = 99;
  const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
  let read = 0;
  for (let round = 0; round < 500; round++) {
    const memory = Uint8Array.from({ length: size + 64 }, random);
    const view = new DataView(memory.buffer);
    if (round % 2 === 0) {
      // A plausible header, so that the site checks get exercised too.
      view.setUint32(16, PROFILE_TABLE.magic, true);
      view.setUint32(20, PROFILE_TABLE.version, true);
      view.setUint32(24, 4, true);
      view.setUint32(28, 4, true);
      view.setUint32(32, PROFILE_TABLE.site.pcs + 32, true);
    }
    try {
      const table = readProfileTable(memory, { address: 16, size });
      assert.ok(table.sites.length + table.skipped <= 4);
      read++;
    } catch (error) {
      assert.ok(error instanceof GuestProtocolError, `round ${round}: ${String(error)}`);
    }
  }
  assert.ok(read > 0);
  assert.throws(() => readProfileTable(new Uint8Array(100), { address: 90, size: 24 }), GuestProtocolError);
});

test("the host's table constants match guest/include/vmlet_profile.h", () => {
  const header = fs.readFileSync(path.join(repoRoot, "guest/include/vmlet_profile.h"), "utf8");
  const define = (name: string): number => {
    const m = new RegExp(`#define ${name} (0x[0-9a-f]+|\\d+)u?\\b`).exec(header);
    assert.ok(m?.[1], name);
    return Number(m[1]);
  };
  assert.equal(define("VMLET_PROFILE_MAGIC"), PROFILE_TABLE.magic);
  assert.equal(define("VMLET_PROFILE_VERSION"), PROFILE_TABLE.version);
  const h = PROFILE_TABLE.header, s = PROFILE_TABLE.site;
  assert.deepEqual(
    [define("VMLET_PROF_MAGIC"), define("VMLET_PROF_VERSION"), define("VMLET_PROF_SITES"), define("VMLET_PROF_DEPTH"), define("VMLET_PROF_SITE_SIZE"), define("VMLET_PROF_USED"), define("VMLET_PROF_HEADER_SIZE")],
    [h.magic, h.version, h.sites, h.depth, h.siteSize, h.used, h.size],
  );
  assert.deepEqual(
    [define("VMLET_PROF_ALLOC_OBJECTS"), define("VMLET_PROF_ALLOC_BYTES"), define("VMLET_PROF_INUSE_OBJECTS"), define("VMLET_PROF_INUSE_BYTES"), define("VMLET_PROF_FRAMES"), define("VMLET_PROF_HASH"), define("VMLET_PROF_PCS")],
    [s.allocObjects, s.allocBytes, s.inuseObjects, s.inuseBytes, s.frames, s.hash, s.pcs],
  );
});

test("vmlet run --mem-profile writes the profile of the call's sandbox; an unwritable path is STORAGE", async () => {
  const { spawnSync } = await import("node:child_process");
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), ...args], { encoding: "utf8", timeout: 60_000 });
  const layout = path.join(dir, "cli-layout");
  assert.equal(cli("snapshot", "create", guestPath("profiled"), layout, "p").status, 0);
  const file = path.join(dir, "cli.pb.gz");
  const run = cli("run", `${layout}:p`, "alloc_kept", "5", "--mem-profile", file);
  assert.equal(run.status, 0, run.stderr);
  const { sites } = decode(fs.readFileSync(file));
  assert.ok(sites.some((s) => s.allocObjects >= 5), `a site with the 5 kept blocks: ${JSON.stringify(sites.map(totals))}`);
  const bad = cli("run", `${layout}:p`, "alloc_kept", "1", "--mem-profile", path.join(dir, "no/such/dir/p.gz"));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^vmlet: STORAGE: /m);
});
