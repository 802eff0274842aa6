/**
 * Typed guest calls: sb.typed<T>() checks calls against an interface at compile time (the
 * `@ts-expect-error` lines here are compiled by tsc in `npm test`), and `vmlet guest types`
 * writes that interface from a guest ELF without running it. The generated declaration is
 * type-checked by tsc against a consumer file in a temporary project.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { SandboxBuilder, SandboxClosedError, UnknownFunctionError, type Sandbox } from "../src/index.js";
import { formatSignature } from "../src/abi/types.js";
import { exportedFunctions, guestDeclaration } from "../src/cli/guest-types.js";
import { guestPath, repoRoot } from "./helpers.js";

interface Demo {
  add(a: number, b: number): number;
  echo(s: string): string;
  read_address(address: bigint | number): number;
  spin_forever(): void;
}

/** Never run: each wrong call must be a compile error. */
export function typeChecks(sb: Sandbox): void {
  const demo = sb.typed<Demo>();
  const sum: number = demo.callSync("add", 1, 2);
  const later: Promise<string> = demo.call("echo", "x", { timeoutMs: 100 });
  void [sum, later];
  // @ts-expect-error add takes numbers
  demo.callSync("add", "1", 2);
  // @ts-expect-error add takes two arguments
  demo.callSync("add", 1);
  // @ts-expect-error not in the interface
  demo.callSync("nosuch");
  // @ts-expect-error echo returns a string
  const wrong: number = demo.callSync("echo", "x");
  // @ts-expect-error call() returns a promise
  const notAwaited: string = demo.call("echo", "x");
  void [wrong, notAwaited];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-guest-types-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("sb.typed<T>() calls the guest through call() and callSync()", async () => {
  const sb = await new SandboxBuilder().guest(guestPath("demo")).build();
  const demo = sb.typed<Demo>();
  try {
    assert.equal(demo.callSync("add", 2, 3), 5);
    assert.equal(await demo.call("echo", "typed"), "typed");
    // Types are erased: a name the guest lacks is still refused at run time.
    const lying = sb.typed<{ nosuch(): number }>();
    assert.throws(() => lying.callSync("nosuch"), UnknownFunctionError);
  } finally {
    sb.close();
  }
  assert.throws(() => sb.typed<Demo>(), SandboxClosedError);
});

test("the export table read from the ELF is the one the running guest publishes", async () => {
  const fromElf = exportedFunctions(fs.readFileSync(guestPath("demo")));
  const sb = await new SandboxBuilder().guest(guestPath("demo")).build();
  try {
    assert.deepEqual(fromElf.map((f) => formatSignature(f.name, f)).sort(), [...sb.functions].sort());
  } finally {
    sb.close();
  }
  const add = fromElf.find((f) => f.name === "add");
  assert.deepEqual({ params: add?.params, returns: add?.returns }, { params: ["i32", "i32"], returns: "i32" });
  assert.match(guestDeclaration(fromElf, "Demo", "demo.elf"), /^ {2}read_address\(arg0: bigint \| number\): number;$/m);
});

test("`vmlet guest types` output type-checks a consumer with tsc, and catches a wrong call", () => {
  const cli = path.join(repoRoot, "dist/src/cli/main.js");
  const generated = spawnSync(process.execPath, [cli, "guest", "types", guestPath("demo"), "--name", "Demo"], { encoding: "utf8" });
  assert.equal(generated.status, 0, generated.stderr);
  fs.writeFileSync(path.join(tmp, "guest.d.ts"), generated.stdout);
  fs.writeFileSync(path.join(tmp, "package.json"), JSON.stringify({ type: "module" }));
  const index = JSON.stringify(path.join(repoRoot, "dist/src/index.js"));
  const consumer = (body: string): string =>
    `import type { Sandbox } from ${index};\nimport type { Demo } from "./guest.js";\n` +
    `export async function use(sb: Sandbox): Promise<bigint> {\n  const demo = sb.typed<Demo>();\n${body}\n}\n`;
  const good = consumer(`  const n: number = await demo.call("add", 1, 2);
  const s: string = demo.callSync("echo", "hi", { timeoutMs: 100 });
  const m: number = demo.callSync("mean", n, s.length, 3);
  demo.callSync("read_address", 4096n);
  // @ts-expect-error count_byte takes bytes first
  demo.callSync("count_byte", "text", 1);
  return BigInt(m);`);
  fs.writeFileSync(path.join(tmp, "consumer.ts"), good);
  const tsconfig = {
    compilerOptions: {
      module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true,
      skipLibCheck: true, types: ["node"], typeRoots: [path.join(repoRoot, "node_modules/@types")],
    },
    files: ["consumer.ts"],
  };
  fs.writeFileSync(path.join(tmp, "tsconfig.json"), JSON.stringify(tsconfig));
  const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");
  const ok = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: tmp, encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  fs.writeFileSync(path.join(tmp, "consumer.ts"), consumer(`  return demo.callSync("add", 1n, 2);`));
  const bad = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: tmp, encoding: "utf8" });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /consumer\.ts.*error TS/);
});

test("`vmlet guest types` refuses a file that is not a vmlet guest with a typed error", () => {
  const notElf = path.join(tmp, "not.elf");
  fs.writeFileSync(notElf, "#!/bin/sh\n");
  const cli = path.join(repoRoot, "dist/src/cli/main.js");
  const r = spawnSync(process.execPath, [cli, "guest", "types", notElf], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /BAD_GUEST_BINARY/);
  assert.throws(() => exportedFunctions(fs.readFileSync(path.join(repoRoot, "dist/src/cli/main.js"))), /bad magic/);
});
