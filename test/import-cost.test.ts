/**
 * `import "vmlet"` loads only what a first call needs (issue 17): the modules of debugging
 * (the gdb stub and node:net, pprof-format and node:zlib for memory profiles) load when
 * debug() or memoryProfile() first runs. Checked on what the package runs (the bundles in
 * dist/pkg, scripts/bundle.mjs) and on tsc's CommonJS tree they are made from, each in a new
 * Node process. ES modules: a module.register() load hook posts every URL the loader loads
 * to the main thread, which reads them synchronously once the import is done. CommonJS:
 * require.cache after require() (it lists files, so node: modules are not checked there).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { repoRoot } from "./helpers.js";

/** What package.json's exports send `import` and `require` to. */
const esmEntry = path.join(repoRoot, "dist/pkg/index.js");
const cjsEntry = path.join(repoRoot, "dist/pkg/index.cjs");
/** The CommonJS bundle's input, where its modules are still files of their own. */
const cjsTree = path.join(repoRoot, "dist/cjs/index.js");

/** What only debugging needs: none of it may load at import. The bundle names the stub's chunk gdb-stub-HASH.js. */
const DEBUG_ONLY = [/\/pprof-format\//, /\/gdb-stub(-[A-Z0-9]+)?\.js$/, /^node:net$/, /^node:zlib$/];

function runNode(args: readonly string[]): string {
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `node ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Every URL the ES module loader loads while `import(url)` runs in a new process, builtins included. */
function esmLoads(url: string): string[] {
  const hooks = `let port; export function initialize(data) { port = data.port; }
    export async function load(url, context, next) { port.postMessage(url); return next(url, context); }`;
  const script = `
    import { register } from "node:module";
    import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
    const { port1, port2 } = new MessageChannel();
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)}, { data: { port: port2 }, transferList: [port2] });
    await import(${JSON.stringify(url)});
    const urls = [];
    for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) urls.push(m.message);
    port1.close();
    process.stdout.write(JSON.stringify(urls));`;
  return JSON.parse(runNode(["--input-type=module", "-e", script])) as string[];
}

/** require.cache's files after `require(file)` in a new process. */
function cjsLoads(file: string): string[] {
  return JSON.parse(runNode(["-e", `require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`])) as string[];
}

const debugOnly = (loaded: readonly string[]): string[] => loaded.filter((u) => DEBUG_ONLY.some((p) => p.test(u)));

test("the ES module loader hook sees the debugging modules when something imports them", () => {
  // The check below would pass vacuously if the hook saw nothing: here it must see them all.
  const loaded = esmLoads(pathToFileURL(path.join(repoRoot, "dist/src/debug/gdb-stub.js")).href);
  assert.deepEqual(debugOnly(loaded).sort(), [pathToFileURL(path.join(repoRoot, "dist/src/debug/gdb-stub.js")).href, "node:net"]);
  assert.ok(loaded.includes("node:net"), loaded.join("\n"));
  assert.ok(esmLoads("pprof-format").some((u) => u.includes("/pprof-format/")));
  assert.ok(esmLoads("node:zlib").includes("node:zlib"));
});

test('import "vmlet" (ES module) loads none of the debugging modules', () => {
  const loaded = esmLoads(pathToFileURL(esmEntry).href);
  assert.ok(loaded.includes(pathToFileURL(esmEntry).href), "the hook saw the package's own files");
  assert.deepEqual(debugOnly(loaded), []);
});

test('require("vmlet") (CommonJS) loads neither the gdb stub nor pprof-format', () => {
  for (const entry of [cjsEntry, cjsTree]) {
    const loaded = cjsLoads(entry);
    assert.ok(loaded.includes(entry), `require.cache holds ${entry}`);
    assert.deepEqual(debugOnly(loaded), [], entry);
  }
});

test("the bundles load as few files as they can: the ES entry and its shared chunks, the CommonJS entry alone", () => {
  const esm = esmLoads(pathToFileURL(esmEntry).href).filter((u) => u.startsWith("file:"));
  assert.ok(esm.length <= 3, esm.join("\n"));
  assert.deepEqual(cjsLoads(cjsEntry), [cjsEntry]);
});

/** Node's own modules that `import "vmlet"` and a first sandbox need not load: node:crypto costs 5–10 ms, node:stream ~5 ms. */
const HEAVY_BUILTINS = ["NativeModule crypto", "NativeModule stream"];

/** process.moduleLoadList's new entries after running `body` in a new process, ES module or CommonJS (a file: `node -e` preloads both). */
function builtinsLoadedBy(kind: "esm" | "cjs", body: string): string[] {
  // Listed before process.stdout is touched: its getter loads node:net and node:stream.
  const report = `const loaded = JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m))); process.stdout.write(loaded);`;
  if (kind === "esm") return JSON.parse(runNode(["--input-type=module", "-e", `const before = new Set(process.moduleLoadList);\n${body}\n${report}`])) as string[];
  const dir = mkdtempSync(path.join(tmpdir(), "vmlet-import-"));
  try {
    const file = path.join(dir, "probe.cjs");
    writeFileSync(file, `const before = new Set(process.moduleLoadList);\n(async () => {\n${body}\n${report}\n})();`);
    return JSON.parse(runNode([file])) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('import "vmlet" and require("vmlet") load neither node:crypto nor node:stream', () => {
  const esm = builtinsLoadedBy("esm", `await import(${JSON.stringify(pathToFileURL(esmEntry).href)});`);
  const cjs = builtinsLoadedBy("cjs", `require(${JSON.stringify(cjsEntry)});`);
  for (const [kind, loaded] of [["import", esm], ["require", cjs]] as const) {
    assert.ok(loaded.length > 0, `${kind}: the probe saw no module load at all`);
    assert.deepEqual(loaded.filter((m) => HEAVY_BUILTINS.includes(m)), [], `${kind} loaded ${loaded.join(", ")}`);
  }
});

test("a first sandbox and its first call load neither node:crypto (seeds and ids come from getrandom) nor node:perf_hooks", () => {
  const body = `const { createSandbox, demoGuestPath } = await import(${JSON.stringify(pathToFileURL(esmEntry).href)});
    const sb = await createSandbox({ guest: demoGuestPath() });
    if (sb.callSync("add", 2, 3) !== 5) throw new Error("add(2, 3) went wrong");
    sb.close();`;
  const loaded = builtinsLoadedBy("esm", body);
  assert.deepEqual(loaded.filter((m) => [...HEAVY_BUILTINS, "NativeModule perf_hooks"].includes(m)), [], loaded.join(", "));
  // The probe is not blind: a snapshot file's digest does load node:crypto.
  const saving = builtinsLoadedBy("esm", `const { createSandbox, demoGuestPath } = await import(${JSON.stringify(pathToFileURL(esmEntry).href)});
    const { mkdtempSync, rmSync } = await import("node:fs");
    const dir = mkdtempSync(${JSON.stringify(path.join(tmpdir(), "vmlet-import-save-"))});
    const sb = await createSandbox({ guest: demoGuestPath() });
    await sb.snapshot().save(dir, "t");
    sb.close();
    rmSync(dir, { recursive: true, force: true });`);
  assert.ok(saving.includes("NativeModule crypto"), saving.join(", "));
});

test("a first sandbox loads the addon file directly: node-gyp-build's search is left for files it does not know", () => {
  const script = `const { createSandbox, demoGuestPath } = await import(${JSON.stringify(pathToFileURL(esmEntry).href)});
    const { createRequire } = await import("node:module");
    const sb = await createSandbox({ guest: demoGuestPath() });
    sb.close();
    process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
  const required = JSON.parse(runNode(["--input-type=module", "-e", script])) as string[];
  assert.ok(required.some((f) => f.endsWith("vmlet.node")), required.join("\n"));
  assert.deepEqual(required.filter((f) => f.includes("node-gyp-build")), []);
});

test("import allocates no large buffers (the 1 MiB of zeros snapshot digests hash holes with waits for its first use)", () => {
  const limit = 256 << 10;
  const esm = Number(runNode(["--input-type=module", "-e", `const before = process.memoryUsage().arrayBuffers;
    await import(${JSON.stringify(pathToFileURL(esmEntry).href)});
    process.stdout.write(String(process.memoryUsage().arrayBuffers - before));`]));
  const cjs = Number(runNode(["-e", `const before = process.memoryUsage().arrayBuffers;
    require(${JSON.stringify(cjsEntry)});
    process.stdout.write(String(process.memoryUsage().arrayBuffers - before));`]));
  assert.ok(esm < limit, `import: ${esm} bytes of ArrayBuffers`);
  assert.ok(cjs < limit, `require: ${cjs} bytes of ArrayBuffers`);
});
