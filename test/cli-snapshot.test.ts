/**
 * The `vmlet snapshot …` and `vmlet run` commands, driven as a user drives them: the
 * built CLI in a child process, a layout in a temp dir. Text and --json output, exit
 * codes (0 ok, 1 failure, 2 usage), corruption found by verify, rm + gc, digest refs.
 * The argument parsing and the progress bar are also tested directly.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { SandboxBuilder } from "../src/index.js";
import { parseArgs, parseSize, splitDirRef, UsageError } from "../src/cli/args.js";
import { ProgressBar } from "../src/cli/progress.js";
import { runCli } from "../src/cli/cli.js";
import { toJson, type Io } from "../src/cli/io.js";
import { formatResult, jsonResult, parseCallArgs, parseSignature, parseValue } from "../src/cli/values.js";
import { guestPath, repoRoot } from "./helpers.js";
import { backendInfo } from "../src/hypervisor/backend.js";


const CLI = path.join(repoRoot, "dist/src/cli/main.js");
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-cli-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vmlet(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: tmp, encoding: "utf8", timeout: 60_000, env });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs and asserts the exit status, showing the output when it differs. */
function expectExit(status: number, ...args: string[]): Result {
  return expectExitIn(process.env, status, ...args);
}

function expectExitIn(env: NodeJS.ProcessEnv, status: number, ...args: string[]): Result {
  const r = vmlet(args, env);
  assert.equal(r.status, status, `vmlet ${args.join(" ")} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  return r;
}

function json(r: Result): Record<string, unknown> {
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const blobsIn = (dir: string): string[] => fs.readdirSync(path.join(tmp, dir, "blobs/sha256"));

describe("argument parsing (no KVM)", () => {
  test("<dir>:<ref> splits on the last colon that is not part of a digest", () => {
    const hex = "ab".repeat(32);
    assert.deepEqual(splitDirRef("./snaps:base", ""), { dir: "./snaps", ref: "base" });
    assert.deepEqual(splitDirRef(`./snaps:sha256:${hex}`, ""), { dir: "./snaps", ref: `sha256:${hex}` });
    assert.deepEqual(splitDirRef("/a:b/snaps:v1.2", ""), { dir: "/a:b/snaps", ref: "v1.2" });
    assert.deepEqual(splitDirRef("/a:b/snaps:sha256:abcd12", ""), { dir: "/a:b/snaps", ref: "sha256:abcd12" });
    for (const bad of ["snaps", ":base", "snaps:", "snaps:.hidden", "snaps:sha256:xyz", "snaps:sha256:ab"]) {
      assert.throws(() => splitDirRef(bad, ""), UsageError, bad);
    }
  });

  test("arguments follow the function's signature", () => {
    assert.equal(parseValue("-2147483648", "i32", ""), -2147483648);
    assert.equal(parseValue("0xff", "u32", ""), 255);
    assert.equal(parseValue("18446744073709551615", "u64", ""), 2n ** 64n - 1n);
    assert.equal(parseValue("-9223372036854775808", "i64", ""), -(2n ** 63n));
    assert.equal(parseValue("2.5", "f64", ""), 2.5);
    assert.equal(parseValue("-inf", "f32", ""), -Infinity);
    assert.equal(parseValue("true", "bool", ""), true);
    assert.equal(parseValue("--x y", "string", ""), "--x y");
    assert.deepEqual(parseValue("0x01ff", "bytes", ""), new Uint8Array([1, 255]));
    assert.deepEqual(parseValue("", "bytes", ""), new Uint8Array());
    const file = path.join(tmp, "bytes.bin");
    fs.writeFileSync(file, new Uint8Array([9, 8, 7]));
    assert.deepEqual(parseValue(`@${file}`, "bytes", ""), new Uint8Array([9, 8, 7]));
    for (const [text, type] of [["2147483648", "i32"], ["-1", "u32"], ["1.5", "i32"], ["", "f64"], ["x", "f64"], ["yes", "bool"], ["abc", "bytes"], ["18446744073709551616", "u64"]] as const) {
      assert.throws(() => parseValue(text, type, ""), UsageError, `${text} as ${type}`);
    }
    const add = parseSignature("add(i32, i32) -> i32");
    assert.deepEqual(parseCallArgs(add, ["1", "2"]), [1, 2]);
    assert.throws(() => parseCallArgs(add, ["1"]), /takes 2 arguments, got 1/);
    assert.deepEqual(parseSignature("noop() -> void").params, []);
  });

  test("results: bigints in decimal, bytes as hex, JSON-safe floats", () => {
    assert.equal(formatResult(2n ** 64n - 1n, "u64"), "18446744073709551615");
    assert.equal(formatResult(new Uint8Array([0, 255]), "bytes"), "00ff");
    assert.equal(formatResult(undefined, "void"), undefined);
    assert.equal(jsonResult(5n, "i64"), "5");
    assert.equal(jsonResult(NaN, "f64"), "NaN");
    assert.equal(jsonResult(undefined, "void"), null);
  });

  test("options: parseArgs forms, --call groups, negative numbers, repeated and unknown options", () => {
    const spec = { options: { json: { type: "boolean" }, output: { type: "string", short: "o" }, include: { type: "string", short: "I", multiple: true } }, calls: true, guestArguments: true } as const;
    const a = parseArgs(["x", "--call", "f", "1", "-2", "--json", "-Ia", "--call", "g", "-1.5", "--", "--y", "-o=z", "-I", "b", "-o", "out"], spec, "");
    assert.deepEqual(a.positionals, ["x"]);
    assert.deepEqual(a.calls, [{ fn: "f", args: ["1", "-2"] }, { fn: "g", args: ["-1.5", "--y", "-o=z", "-I", "b", "-o", "out"] }], "an option ends a group; after -- everything is an argument");
    assert.deepEqual([a.flags.get("json"), a.lists.get("include")], [true, ["a"]]);
    const b = parseArgs(["--output=o.elf", "-Ib", "-I", "c", "-h"], spec, "");
    assert.deepEqual([b.flags.get("output"), b.lists.get("include"), b.help], ["o.elf", ["b", "c"], true]);
    for (const [argv, message] of [
      [["--constructor"], /unknown option --constructor/], [["--__proto__=1"], /unknown option --__proto__/], [["-xyz"], /unknown option -x in -xyz/],
      [["--json=1"], /--json takes no value/], [["-o"], /-o needs a value/], [["--output="], /--output needs a value/],
      [["--output", "--json"], /--output needs a value/], [["--call", "--json"], /--call needs a function name/],
    ] as const) {
      assert.throws(() => parseArgs(argv, spec, ""), message, argv.join(" "));
    }
    assert.throws(() => parseArgs(["-5"], { options: {} }, ""), /unknown option -5/, "negative numbers are arguments only where guest arguments are");
  });

  test("sizes", () => {
    assert.equal(parseSize("4096", "", ""), 4096);
    assert.equal(parseSize("64M", "", ""), 64 << 20);
    assert.equal(parseSize("1GiB", "", ""), 1 << 30);
    assert.throws(() => parseSize("12Q", "", ""), UsageError);
  });
});

describe("progress bar (no KVM)", () => {
  function sink(isTTY: boolean): { isTTY: boolean; columns: number; text: string; write(s: string): boolean } {
    return { isTTY, columns: 100, text: "", write(s: string) { this.text += s; return true; } };
  }

  test("drawn on a TTY for work over 64 MiB, erased when done", () => {
    const s = sink(true);
    const bar = new ProgressBar("saving", s);
    bar.update(0, 256 << 20);
    bar.update(256 << 20, 256 << 20);
    assert.match(s.text, /saving \[#+\] 100% 256 MiB \/ 256 MiB/);
    bar.finish();
    assert.ok(s.text.endsWith("\r\x1b[K"));
  });

  test("not drawn for small fast work, off a TTY, or when disabled (--json)", () => {
    for (const [s, enabled, total] of [[sink(true), true, 1 << 20], [sink(false), true, 1 << 30], [sink(true), false, 1 << 30]] as const) {
      const bar = new ProgressBar("x", s, { enabled });
      bar.update(0, total);
      bar.update(total, total);
      bar.finish();
      assert.equal(s.text, "");
    }
  });

  test("drawn for small work that takes longer than 200 ms", () => {
    const s = sink(true);
    let now = 0;
    const bar = new ProgressBar("verifying", s, { now: () => now });
    bar.update(1, 1 << 20);
    assert.equal(s.text, "");
    now = 250;
    bar.update(1 << 19, 1 << 20);
    assert.match(s.text, /verifying \[#+-+\]  50%/);
  });
});

describe("usage errors exit 2 (no KVM)", () => {
  test("help lists the snapshot commands and run", () => {
    const r = expectExit(0, "help");
    for (const c of ["snapshot create", "snapshot ls", "snapshot inspect", "snapshot verify", "snapshot rm", "snapshot gc", "run <dir>:<ref>"]) assert.ok(r.stdout.includes(c), c);
    assert.match(expectExit(0, "help", "snapshot", "create").stdout, /--heap-size/);
    assert.match(expectExit(0, "snapshot", "verify", "--help").stdout, /usage: vmlet snapshot verify/);
  });

  test("missing arguments, unknown commands and options, bad tags", () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /missing command/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["snapshot"], /missing snapshot command/],
      [["snapshot", "frob"], /unknown snapshot command "frob"/],
      [["snapshot", "create", guestPath("snapshot"), "snaps"], /missing <tag>/],
      [["snapshot", "create", guestPath("snapshot"), "snaps", "--", "-bad"], /not a valid tag/],
      [["snapshot", "create", guestPath("snapshot"), "snaps", "-bad"], /unknown option -b in -bad/],
      [["snapshot", "create", guestPath("snapshot"), "snaps", "t", "--heap-size", "lots"], /not a size/],
      [["snapshot", "create", guestPath("snapshot"), "snaps", "t", "--call"], /--call needs a function name/],
      [["snapshot", "ls"], /missing <dir>/],
      [["snapshot", "ls", "a", "b"], /unexpected argument: b/],
      [["snapshot", "inspect", "snaps"], /missing <ref>/],
      [["snapshot", "inspect", "snaps", "no/such"], /neither a tag nor a manifest digest/],
      [["snapshot", "verify"], /missing <dir>/],
      [["snapshot", "rm", "snaps"], /missing <tag>/],
      [["snapshot", "rm", "snaps", "bad tag"], /not a valid tag/],
      [["snapshot", "gc", "--force", "snaps"], /unknown option --force/],
      [["run"], /missing <dir>:<ref>/],
      [["run", "snaps"], /missing <fn>/],
      [["run", "snaps", "bump"], /is not <dir>:<ref>/],
      [["help", "nothing"], /no command "nothing"/],
    ];
    for (const [args, message] of cases) {
      const r = expectExit(2, ...args);
      assert.match(r.stderr, message, args.join(" "));
      assert.match(r.stderr, /usage: vmlet/, `usage text for ${args.join(" ")}`);
      assert.equal(r.stdout, "", `nothing on stdout for ${args.join(" ")}`);
    }
  });

  test("--json usage errors print a JSON error document", () => {
    const r = expectExit(2, "snapshot", "ls", "--json");
    assert.deepEqual(json(r), { error: { code: "USAGE", message: "missing <dir>" } });
  });
});

describe("snapshot commands and run", () => {
  let digest = "";

  test("create with --call, then run reads the state back", () => {
    const r = expectExit(0, "snapshot", "create", guestPath("snapshot"), "snaps", "two", "--call", "bump", "--call", "heap_fill", "50000", "7", "--call", "bump");
    digest = r.stdout.trim();
    assert.match(digest, DIGEST, "stdout is the manifest digest alone");
    assert.match(r.stderr, /bump\(\) = 2/);
    assert.equal(expectExit(0, "run", "snaps:two", "get_counter").stdout, "2\n");
    assert.equal(expectExit(0, "run", "./snaps:two", "bump").stdout, "3\n", "each run starts from the snapshot");
    assert.equal(expectExit(0, "run", "snaps:two", "get_counter").stdout, "2\n");
  });

  test("run with a digest ref, a digest prefix, and an absolute dir", () => {
    assert.equal(expectExit(0, "run", `snaps:${digest}`, "get_counter").stdout, "2\n");
    assert.equal(expectExit(0, "run", `${path.join(tmp, "snaps")}:${digest}`, "get_counter").stdout, "2\n");
    assert.equal(expectExit(0, "run", `snaps:${digest.slice(0, 19)}`, "get_counter", "--verify").stdout, "2\n");
  });

  test("create --json prints one document with the digest and the calls", () => {
    const r = expectExit(0, "snapshot", "create", guestPath("demo"), "snaps", "demo", "--heap-size", "4M", "--call", "add", "2", "40", "--call", "count_byte", "01020101", "1", "--json");
    const doc = json(r);
    assert.equal(doc.tag, "demo");
    assert.match(doc.digest as string, DIGEST);
    assert.equal(doc.guest, "demo.elf");
    assert.ok((doc.memorySize as number) > 4 << 20);
    assert.deepEqual(doc.calls, [
      { function: "add", signature: "add(i32, i32) -> i32", args: ["2", "40"], result: 42, type: "i32" },
      { function: "count_byte", signature: "count_byte(bytes, u32) -> u32", args: ["01020101", "1"], result: 3, type: "u32" },
    ]);
    assert.equal(r.stderr, "", "nothing but the document in --json mode");
  });

  test("run converts arguments and results by signature", () => {
    assert.equal(expectExit(0, "run", "snaps:demo", "echo", "--", "--json").stdout, "--json\n", "-- ends option parsing");
    assert.equal(expectExit(0, "run", "snaps:demo", "mean", "1", "2", "4.5").stdout, "2.5\n");
    assert.equal(expectExit(0, "run", "snaps:demo", "repeat", "ab", "3").stdout, "ab ab ab \n", "strings as they are, trailing space included");
    fs.writeFileSync(path.join(tmp, "input.bin"), new Uint8Array([5, 1, 5, 5]));
    assert.equal(expectExit(0, "run", "snaps:demo", "count_byte", "@input.bin", "5").stdout, "3\n");
    assert.equal(expectExit(0, "run", "snaps:demo", "noop").stdout, "0\n");
    assert.deepEqual(json(expectExit(0, "run", "snaps:two", "random_u64", "--json")).type, "u64");
    assert.match(json(expectExit(0, "run", "snaps:two", "random_u64", "--json")).result as string, /^\d+$/, "u64 as a decimal string");
    assert.deepEqual(json(expectExit(0, "run", "snaps:two", "set_value", "1.5", "--json")), {
      dir: "snaps", ref: "two", function: "set_value", signature: "set_value(f64) -> void", type: "void", result: null,
    });
    assert.equal(expectExit(0, "run", "snaps:two", "heap_check", "7").stdout, "true\n", "the heap block --call heap_fill wrote");
    assert.equal(expectExit(0, "run", "snaps:two", "heap_check", "8").stdout, "false\n");
    assert.match(expectExit(2, "run", "snaps:demo", "add", "1", "x").stderr, /argument 2 of add\(i32, i32\) -> i32: "x" is not an integer/);
    assert.match(expectExit(2, "run", "snaps:demo", "add", "1").stderr, /takes 2 arguments, got 1/);
    assert.match(expectExit(1, "run", "snaps:demo", "nope").stderr, /^vmlet: UNKNOWN_FUNCTION: guest has no function "nope" \(it exports: .*add\(i32, i32\) -> i32/m);
    assert.match(expectExit(1, "run", "snaps:demo", "read_address", "0").stderr, /^vmlet: GUEST_FAULT: /m);
    assert.match(expectExit(1, "run", "snaps:demo", "spin_forever", "--timeout-ms", "50").stderr, /^vmlet: TIMEOUT: /m);
    assert.match(expectExit(1, "run", "snaps:demo", "spin_forever", "--cpu-time-ms", "50").stderr, /^vmlet: CPU_TIME_LIMIT: .*50 ms/m);
    assert.match(expectExit(2, "run", "snaps:demo", "add", "1", "2", "--cpu-time-ms", "-3").stderr, /--cpu-time-ms/);
  });

  test("negative numbers are guest arguments, not options; -- passes anything (in-process)", async () => {
    const run = async (...args: string[]): Promise<string> => {
      let stdout = "";
      const io: Io = { json: args.includes("--json"), out: (l) => void (stdout += `${l}\n`), err: () => undefined, printJson: (d) => void (stdout += toJson(d)), stderr: { write: () => true } };
      assert.equal(await runCli(["run", `${path.join(tmp, "snaps")}:demo`, ...args], io), 0, args.join(" "));
      return stdout;
    };
    assert.equal(await run("add", "-5", "3"), "-2\n");
    assert.equal(await run("mean", "-1.5", "-0.5", "-inf"), "-Infinity\n");
    assert.equal((JSON.parse(await run("add", "-0x10", "1", "--json")) as { result: number }).result, -15);
    assert.equal(await run("echo", "--", "-x"), "-x\n");
  });

  test("what needs no backend is checked before one is opened: an unknown function, arguments, host functions (run and snapshot create)", () => {
    // A VMLET_BACKEND no machine has: opening any backend fails, so these errors come first.
    const noBackend = { ...process.env, VMLET_BACKEND: "none-here" };
    assert.match(expectExitIn(noBackend, 1, "run", "snaps:demo", "nosuch").stderr, /^vmlet: UNKNOWN_FUNCTION: guest has no function "nosuch"/m);
    assert.match(expectExitIn(noBackend, 2, "run", "snaps:demo", "add", "1").stderr, /takes 2 arguments, got 1/);
    assert.match(expectExitIn(noBackend, 1, "run", "snaps:demo", "add", "1", "2").stderr, /^vmlet: INVALID_CONFIG: VMLET_BACKEND must be one of/m, "a call that passes the checks needs the backend");
    // snapshot create reads the ELF's export table first: no sandbox is built for a --call that cannot run.
    const demoElf = guestPath("demo");
    assert.match(expectExitIn(noBackend, 1, "snapshot", "create", demoElf, "snaps", "never", "--call", "nosuch").stderr, /^vmlet: UNKNOWN_FUNCTION: guest has no function "nosuch"/m);
    assert.match(expectExitIn(noBackend, 2, "snapshot", "create", demoElf, "snaps", "never", "--call", "add", "1", "2", "--call", "add", "x", "1").stderr, /argument 1 of add\(i32, i32\) -> i32: "x" is not an integer/);
    assert.match(expectExitIn(noBackend, 1, "snapshot", "create", demoElf, "snaps", "never", "--call", "add", "1", "2").stderr, /^vmlet: INVALID_CONFIG: VMLET_BACKEND must be one of/m);
    assert.equal(expectExit(0, "snapshot", "ls", "snaps").stdout.includes("never"), false, "nothing was saved");
  });

  test("a snapshot that needs host functions fails with the library's message", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("snapshot")).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
    await sb.snapshot().save(path.join(tmp, "snaps"), "needs-host");
    sb.close();
    const r = expectExit(1, "run", "snaps:needs-host", "get_counter");
    assert.match(r.stderr, /^vmlet: HOST_FUNCTIONS_INCOMPATIBLE: .*missing: host_add_one\(i32\) -> i32/m);
    const noBackend = { ...process.env, VMLET_BACKEND: "none-here" };
    // The load's own checks of the snapshot (which ask the backend which CPU features it offers) come first.
    assert.match(expectExitIn(noBackend, 1, "run", "snaps:needs-host", "get_counter").stderr, /^vmlet: INVALID_CONFIG: VMLET_BACKEND must be one of/m);
    const inspected = json(expectExit(0, "snapshot", "inspect", "snaps", "needs-host", "--json"));
    assert.deepEqual(inspected.hostFunctions, [{ name: "host_add_one", params: ["i32"], returns: "i32", signature: "host_add_one(i32) -> i32" }]);
    assert.equal(inspected.guest, null, "saved without a guestName");
    expectExit(0, "snapshot", "rm", "snaps", "needs-host");
  });

  test("ls: a table, and --json", () => {
    const text = expectExit(0, "snapshot", "ls", "snaps").stdout.split("\n");
    assert.match(text[0]!, /^TAG\s+DIGEST\s+LAYERS\s+MEMORY\s+SIZE\s+DISK\s+GUEST\s+CREATED$/);
    const two = text.find((l) => l.startsWith("two "));
    assert.ok(two, text.join("\n"));
    assert.ok(two.includes(digest.slice(0, 19)) && two.includes("snapshot.elf") && two.includes("MiB"), two);
    const doc = json(expectExit(0, "snapshot", "ls", "snaps", "--json"));
    const list = doc.snapshots as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((s) => s.tag), ["two", "demo"]);
    const s = list[0]!;
    assert.equal(s.digest, digest);
    assert.equal(s.guest, "snapshot.elf");
    assert.equal(s.generation, 1);
    for (const key of ["memorySize", "size", "memoryDiskBytes", "memoryLayers"]) assert.equal(typeof s[key], "number", key);
    assert.equal(s.memoryLayers, 1);
    assert.ok((s.size as number) > (s.memorySize as number));
    assert.ok((s.memoryDiskBytes as number) < (s.memorySize as number), "the memory blob is sparse");
    assert.ok(!Number.isNaN(Date.parse(s.created as string)));
  });

  test("inspect: text and --json", () => {
    const text = expectExit(0, "snapshot", "inspect", "snaps", "two").stdout;
    for (const needle of [digest, "snapshot.elf", "snapshot format 1", "x86_64", "taken by", "guest CPU", "bump() -> i32", "heap_fill(u32, u32) -> bool", "host functions required (0): none", "memory layout", "heap"]) {
      assert.ok(text.includes(needle), `${needle} in\n${text}`);
    }
    const doc = json(expectExit(0, "snapshot", "inspect", "snaps", digest, "--json"));
    assert.equal(doc.tag, "two");
    assert.equal(doc.digest, digest);
    assert.equal(doc.formatVersion, 1);
    assert.equal(doc.arch, "x86_64");
    assert.equal(typeof doc.abiVersion, "number");
    assert.equal(typeof doc.vmletVersion, "string");
    assert.equal((doc.takenBy as { name: string }).name, backendInfo().name);
    assert.ok(Array.isArray((doc.guestCpu as { features: unknown }).features));
    assert.equal(doc.generation, 1);
    assert.equal(doc.maxGuestLogLevel, "info");
    assert.deepEqual(doc.hostFunctions, []);
    const functions = doc.functions as Array<{ name: string; signature: string }>;
    assert.equal(functions.find((f) => f.name === "get_counter")?.signature, "get_counter() -> i32");
    const blobs = doc.blobs as Record<string, { digest: string; size: number }>;
    assert.equal(blobs.manifest!.digest, digest);
    assert.equal(blobs.memory!.size, doc.memorySize);
    assert.match(doc.layoutTable as string, /heap/);
  });

  test("verify: ok, then a corrupt blob is reported with its code and exit 1", () => {
    const ok = expectExit(0, "snapshot", "verify", "snaps");
    assert.match(ok.stdout, /^ok: 2 snapshots, \d+ blobs verified$/m);
    assert.equal(json(expectExit(0, "snapshot", "verify", "snaps", "--json")).ok, true);
    const inspected = json(expectExit(0, "snapshot", "inspect", "snaps", "two", "--json"));
    const memory = (inspected.blobs as Record<string, { digest: string }>).memory!.digest;
    const file = path.join(tmp, "snaps/blobs/sha256", memory.slice("sha256:".length));
    fs.chmodSync(file, 0o644);
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, new Uint8Array([0x5a]), 0, 1, 1 << 20);
    fs.closeSync(fd);
    const bad = expectExit(1, "snapshot", "verify", "snaps");
    assert.match(bad.stdout, /^two: SNAPSHOT_DIGEST_MISMATCH: blob blobs\/sha256\/[a-f0-9]+ is corrupt/m);
    assert.match(bad.stdout, /^FAILED: 1 problem/m);
    const doc = json(expectExit(1, "snapshot", "verify", "snaps", "--json"));
    assert.equal(doc.ok, false);
    assert.deepEqual((doc.problems as Array<{ ref: string; code: string }>).map((p) => [p.ref, p.code]), [["two", "SNAPSHOT_DIGEST_MISMATCH"]]);
    assert.match(expectExit(1, "run", "snaps:two", "get_counter", "--verify").stderr, /^vmlet: SNAPSHOT_DIGEST_MISMATCH: /m);
  });

  test("ls lists around a snapshot whose manifest cannot be read, names it, and exits 1", () => {
    const layout = path.join(tmp, "snaps");
    const manifest = path.join(layout, "blobs/sha256", digest.slice("sha256:".length));
    const saved = fs.readFileSync(manifest);
    fs.chmodSync(manifest, 0o644);
    fs.writeFileSync(manifest, "{ not json");
    try {
      const r = expectExit(1, "snapshot", "ls", "snaps");
      assert.ok(r.stdout.split("\n").some((line) => line.startsWith("demo ")), `the readable snapshot is listed:\n${r.stdout}`);
      assert.ok(!r.stdout.includes("two "), "the broken one is not a row");
      assert.match(r.stderr, /^vmlet: two: SNAPSHOT_(INVALID|DIGEST_MISMATCH): /m);
      const doc = json(expectExit(1, "snapshot", "ls", "snaps", "--json"));
      assert.deepEqual((doc.snapshots as Array<{ tag: string }>).map((x) => x.tag), ["demo"]);
      assert.deepEqual((doc.problems as Array<{ ref: string }>).map((p) => p.ref), ["two"]);
    } finally {
      fs.writeFileSync(manifest, saved);
    }
    assert.deepEqual((json(expectExit(0, "snapshot", "ls", "snaps", "--json")).problems as unknown[]), [], "whole again");
  });

  test("rm, then gc frees the blobs", () => {
    const before = blobsIn("snaps").length;
    assert.match(expectExit(0, "snapshot", "rm", "snaps", "two").stdout, /removed snaps:two/);
    assert.match(expectExit(1, "snapshot", "rm", "snaps", "two").stderr, /^vmlet: SNAPSHOT_NOT_FOUND: no tag "two" in snaps$/m);
    assert.equal(blobsIn("snaps").length, before, "rm keeps blobs until gc");
    const gc = expectExit(0, "snapshot", "gc", "snaps");
    assert.match(gc.stdout, /^removed [1-9]\d* blobs?, freed .*B$/m);
    assert.deepEqual(json(expectExit(0, "snapshot", "rm", "snaps", "demo", "--json")), { dir: "snaps", tag: "demo", removed: true });
    const doc = json(expectExit(0, "snapshot", "gc", "snaps", "--json"));
    assert.equal(doc.removedBlobCount, 4);
    assert.ok((doc.freedBytes as number) > 0);
    assert.deepEqual(blobsIn("snaps"), [], "nothing left");
    assert.deepEqual(json(expectExit(0, "snapshot", "ls", "snaps", "--json")).snapshots, []);
    assert.equal(expectExit(0, "snapshot", "ls", "snaps").stdout.trim().split("\n").length, 1, "only the header");
    assert.equal(json(expectExit(0, "snapshot", "gc", "snaps", "--json")).removedBlobCount, 0);
  });

  test("a missing directory or ref is SNAPSHOT_NOT_FOUND, exit 1", () => {
    const missing: string[][] = [
      ["snapshot", "ls", "nowhere"],
      ["snapshot", "inspect", "nowhere", "t"],
      ["snapshot", "verify", "nowhere"],
      ["snapshot", "rm", "nowhere", "t"],
      ["snapshot", "gc", "nowhere"],
      ["run", "nowhere:t", "bump"],
      ["snapshot", "inspect", "snaps", "gone"],
      ["run", "snaps:gone", "bump"],
      ["run", `snaps:${digest}`, "bump"],
      ["run", "snaps:sha256:0000", "bump"],
    ];
    for (const args of missing) {
      const r = expectExit(1, ...args);
      assert.match(r.stderr, /^vmlet: SNAPSHOT_NOT_FOUND: /m, args.join(" "));
    }
    assert.equal(fs.existsSync(path.join(tmp, "nowhere")), false, "rm and gc create nothing");
    assert.deepEqual(json(expectExit(1, "snapshot", "ls", "nowhere", "--json")), { error: { code: "SNAPSHOT_NOT_FOUND", message: "no snapshot layout at nowhere" } });
    assert.match(expectExit(1, "snapshot", "create", path.join(tmp, "no.elf"), "snaps", "t").stderr, /^vmlet: BAD_GUEST_BINARY: /m);
  });
});
