/**
 * Users' own guests: `vmlet guest new`, `vmlet guest build` (C and C++ against the SDK
 * in the package), `vmlet sdk-path` and its flags (the same as guest/sdk.mk's), the
 * compile-time check that a VMLET_EXPORT signature matches its C function, warnings that
 * are not errors, the C++ example, and the CMake recipe of docs/guest-sdk.md.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { createSandbox } from "../src/index.js";
import { repoRoot } from "./helpers.js";

const CLI = path.join(repoRoot, "dist/src/cli/main.js");
const SDK = path.join(repoRoot, "guest");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-cli-guest-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], cwd = tmp): Result {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function vmlet(status: number, ...args: string[]): Result {
  const r = run(process.execPath, [CLI, ...args]);
  assert.equal(r.status, status, `vmlet ${args.join(" ")} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** A variable of guest/sdk.mk as Make expands it, in a Makefile like a user's (GUEST_WARNINGS unset). */
function sdkMakeVariable(name: string, dir = tmp, makefile = `VMLET_SDK := ${SDK}\ninclude $(VMLET_SDK)/sdk.mk\n`): string {
  write("vars/Makefile", `${makefile}print: ; @echo $(${name})\n`);
  const r = run("make", ["-s", "-f", path.join(tmp, "vars/Makefile"), "print"], dir);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("guest new writes a project that guest build turns into a guest the host calls; it never overwrites", async () => {
  const r = vmlet(0, "guest", "new", "hello");
  assert.match(r.stdout, /^next: cd hello && make && node call\.mjs$/m);
  assert.deepEqual(fs.readdirSync(path.join(tmp, "hello")).sort(), [".gitignore", "Makefile", "call.mjs", "guest.c"]);
  assert.match(fs.readFileSync(path.join(tmp, "hello/Makefile"), "utf8"), /^\tnpx vmlet guest build guest\.c -o guest\.elf$/m);
  fs.writeFileSync(path.join(tmp, "hello/guest.c"), `${fs.readFileSync(path.join(tmp, "hello/guest.c"), "utf8")}/* mine */\n`);
  const again = vmlet(1, "guest", "new", "hello");
  assert.match(again.stderr, /^vmlet: FILE_EXISTS: hello already has guest\.c, Makefile, call\.mjs, \.gitignore: nothing was written$/m);
  assert.match(fs.readFileSync(path.join(tmp, "hello/guest.c"), "utf8"), /\/\* mine \*\/\n$/);

  vmlet(0, "guest", "build", "hello/guest.c", "-o", "hello/guest.elf");
  const sb = await createSandbox({ guest: path.join(tmp, "hello/guest.elf") });
  try {
    assert.equal(await sb.call("add", 2, 40), 42);
    assert.equal(await sb.call("greet", "world"), "hello, world");
  } finally {
    sb.close();
  }
});

const MISMATCHES = `#include <vmlet.h>
static double add(int32_t a, double b) { return a + b; }
VMLET_EXPORT(add, I32, I32, I32);
static float mean(void) { return 1.5f; }
VMLET_EXPORT(mean, F64);
static long long wide(long long x) { return x; }
VMLET_EXPORT(wide, I64, I64);
static uint32_t length(char *s) { return (uint32_t)strlen(s); }
VMLET_EXPORT(length, U32, STRING);
static uint32_t count_words(const char *text) { return text[0] != 0; }
VMLET_EXPORT(count_words, I32, STRING);
`;

const EXPECTED_ERRORS = [
  "VMLET_EXPORT(add): add must have the type int32_t (int32_t, int32_t) to match the declared signature",
  "VMLET_EXPORT(mean): mean must have the type double (void) to match the declared signature",
  "VMLET_EXPORT(wide): wide must have the type int64_t (int64_t) to match the declared signature",
  "VMLET_EXPORT(length): length must have the type uint32_t (const char *) to match the declared signature",
  // The message docs/getting-started.md quotes.
  "VMLET_EXPORT(count_words): count_words must have the type int32_t (const char *) to match the declared signature",
];

for (const source of ["mismatch.c", "mismatch.cpp"]) {
  test(`a function whose C types differ from its VMLET_EXPORT signature does not compile (${source})`, () => {
    write(source, MISMATCHES);
    const r = vmlet(1, "guest", "build", source, "-o", "mismatch.elf");
    assert.match(r.stderr, /^vmlet: BUILD_FAILED: compiling mismatch\.c(pp)? failed \(g(cc|\+\+) exited with status 1\)$/m);
    for (const message of EXPECTED_ERRORS) assert.ok(r.stderr.includes(message), `${source}: expected the compiler to say ${message}\n${r.stderr}`);
    assert.equal(fs.existsSync(path.join(tmp, "mismatch.elf")), false);
  });
}

test("matching signatures compile in C and C++: every type, a char * STRING result, noexcept in C++; warnings are not errors", async () => {
  const matching = `#include <vmlet.h>
static bool all(int32_t a, uint32_t b, int64_t c, uint64_t d, float e, double f, bool g, const char *h, vmlet_bytes i) {
  int unused; /* a warning, not an error */
  return a + b + c + d + e + f + g + h[0] + i.len > 0;
}
VMLET_EXPORT(all, BOOL, I32, U32, I64, U64, F32, F64, BOOL, STRING, BYTES);
static char *scratch_copy(const char *s) { char *out = (char *)vmlet_scratch(strlen(s) + 1); strcpy(out, s); return out; }
VMLET_EXPORT(scratch_copy, STRING, STRING);
static vmlet_bytes same(vmlet_bytes b) { return b; }
VMLET_EXPORT(same, BYTES, BYTES);
static void nothing(void) {}
VMLET_EXPORT(nothing, VOID);
`;
  write("matching.c", matching);
  write("matching.cpp", `${matching}static int32_t safe(int32_t x) noexcept { return x; }\nVMLET_EXPORT(safe, I32, I32);\n`);
  for (const source of ["matching.c", "matching.cpp"]) {
    const r = vmlet(0, "guest", "build", source, "-o", `${source}.elf`);
    assert.match(r.stderr, /warning: unused variable .unused./, `${source}: the warning is shown`);
    const sb = await createSandbox({ guest: path.join(tmp, `${source}.elf`) });
    try {
      assert.equal(sb.callSync("all", 1, 2, 3n, 4n, 5, 6, true, "x", new Uint8Array([1])), true);
      assert.equal(sb.callSync("scratch_copy", "copied"), "copied");
    } finally {
      sb.close();
    }
  }
});

test("vmlet's own guests and the SDK library keep -Werror; a user's Makefile does not get it", () => {
  assert.equal(sdkMakeVariable("GUEST_WARNINGS"), "-Wall -Wextra");
  assert.equal(sdkMakeVariable("GUEST_WARNINGS", path.join(repoRoot, "guests"), fs.readFileSync(path.join(repoRoot, "guests/Makefile"), "utf8").replace(/^\.DEFAULT_GOAL.*$/m, "")), "-Wall -Wextra -Werror");
  assert.doesNotMatch(sdkMakeVariable("GUEST_CFLAGS"), /-Werror/);
  assert.equal(sdkMakeVariable("VMLET_WERROR"), "-Werror");
});

test("sdk-path prints the SDK folder, and flags equal to those of guest/sdk.mk", () => {
  assert.equal(vmlet(0, "sdk-path").stdout, `${SDK}\n`);
  const words = (text: string): string[] => text.trim().split(/\s+/);
  assert.deepEqual(words(vmlet(0, "sdk-path", "--cflags").stdout), words(sdkMakeVariable("GUEST_CFLAGS")));
  assert.deepEqual(words(vmlet(0, "sdk-path", "--cxxflags").stdout), words(sdkMakeVariable("GUEST_CXXFLAGS")));
  assert.deepEqual(words(vmlet(0, "sdk-path", "--ldflags").stdout), words(sdkMakeVariable("GUEST_LDFLAGS")));
  assert.deepEqual(words(vmlet(0, "sdk-path", "--libs").stdout), [path.join(SDK, "build/start.S.o"), path.join(SDK, "build/libvmlet.a"), "-lgcc"]);
  const doc = JSON.parse(vmlet(0, "sdk-path", "--json").stdout) as Record<string, unknown>;
  assert.equal(doc.sdk, SDK);
  assert.equal(doc.library, path.join(SDK, "build/libvmlet.a"));
  assert.deepEqual(doc.cflags, words(sdkMakeVariable("GUEST_CFLAGS")));
  assert.equal(vmlet(2, "sdk-path", "extra").stderr.includes("unexpected argument: extra"), true);
});

test("the C++ example examples/cpp-guest/stats.cpp builds with vmlet guest build, and its caller runs it", () => {
  vmlet(0, "guest", "build", path.join(repoRoot, "examples/cpp-guest/stats.cpp"), "-o", "stats.elf");
  const r = run(process.execPath, [path.join(repoRoot, "dist/examples/cpp-guest/main.js"), "stats.elf", "3", "1", "4", "1", "5", "-2.5"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "n=6 min=-2.5 max=5 mean=1.91667\nsorted_descending([3, 9, 1, 7]) = [9, 7, 3, 1]\n");
});

test("guest build: usage mistakes exit 2, a missing compiler is COMPILER_NOT_FOUND, -v prints the commands, -I and -D reach the compiler", () => {
  assert.match(vmlet(2, "guest", "build").stderr, /missing <source>/);
  assert.match(vmlet(2, "guest", "build", "notes.txt").stderr, /notes\.txt: not a source vmlet can build/);
  assert.match(vmlet(2, "guest", "build", "a.c", "-o").stderr, /-o needs a value/);
  write("plain.c", "#include <vmlet.h>\n#include <answer.h>\nstatic int32_t answer(void) { return ANSWER + OFFSET; }\nVMLET_EXPORT(answer, I32);\n");
  assert.match(vmlet(1, "guest", "build", "plain.c", "--cc", "no-such-cc").stderr, /^vmlet: COMPILER_NOT_FOUND: no-such-cc is not installed/m);
  write("inc/answer.h", "#define ANSWER 40\n");
  const r = vmlet(0, "guest", "build", "plain.c", "-Iinc", "-D", "OFFSET=2", "-v", "--json");
  const doc = JSON.parse(r.stdout) as { output: string; commands: string[][] };
  assert.equal(doc.output, "plain.elf", "the first source's name by default");
  assert.equal(doc.commands.length, 2);
  assert.ok(doc.commands[0]!.includes("-Iinc") && doc.commands[0]!.includes("-DOFFSET=2"));
  assert.ok(r.stderr.includes(doc.commands[1]!.join(" ")), "-v prints the link command");
  assert.ok(fs.existsSync(path.join(tmp, "plain.elf")));
});

test("the CMake recipe of docs/guest-sdk.md builds a guest", { skip: spawnSync("cmake", ["--version"]).status === 0 ? false : "cmake is not installed" }, async () => {
  const doc = fs.readFileSync(path.join(repoRoot, "docs/guest-sdk.md"), "utf8");
  const recipe = /```cmake\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(recipe, "docs/guest-sdk.md has a CMake recipe");
  write("cmake/CMakeLists.txt", recipe);
  write("cmake/guest.c", "#include <vmlet.h>\nstatic int32_t twice(int32_t x) { return 2 * x; }\nVMLET_EXPORT(twice, I32, I32);\n");
  const cwd = path.join(tmp, "cmake");
  const configure = run("cmake", ["-S", ".", "-B", "build", `-DVMLET=${process.execPath};${CLI}`], cwd);
  assert.equal(configure.status, 0, configure.stdout + configure.stderr);
  const build = run("cmake", ["--build", "build"], cwd);
  assert.equal(build.status, 0, build.stdout + build.stderr);
  const sb = await createSandbox({ guest: path.join(cwd, "build/guest.elf") });
  try {
    assert.equal(sb.callSync("twice", 21), 42);
  } finally {
    sb.close();
  }
});
