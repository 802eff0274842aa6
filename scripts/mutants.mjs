#!/usr/bin/env node
/**
 * Hand-made mutants of vmlet's security checks, run against the tests that should kill them
 * (docs/security.md § Mutants). Each mutant is one textual change (a bound moved by one, a
 * check dropped) that must occur exactly once in the TypeScript source and in its compiled
 * file under dist/src/; it is applied to the compiled file only (no rebuild per mutant), the
 * named test files run, and the file is put back in a finally. A mutant is killed when the
 * tests fail. At the end every compiled file is compared with its original bytes.
 *
 *   node scripts/mutants.mjs            build first (`npx tsc -p tsconfig.json`), then run all
 *   node scripts/mutants.mjs --only ID  one mutant (IDs are in the table it prints)
 *   node scripts/mutants.mjs --list     the mutants, without running anything
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const T = {
  sizes: "abi-sizes", messages: "abi-messages", writes: "host-writes", session: "call-session", restore: "restore-state",
  rules: "host-function-rules", hostile: "hostile-guests", validation: "snapshot-validation", fpuAddress: "fpu-record-address",
  json: "layout-json-limits", tables: "page-tables", walk: "process-page-walk", supervisor: "supervisor-pages", misbehave: "misbehaving-guests",
};
const ABI = [T.sizes, T.messages, T.writes];

/** [id, source file, find, replace, test files, why it is equivalent (expected to survive)] */
const MUTANTS = [
  ["msg-length-max", "src/abi/messages.ts", "length > buf.size)", "length > buf.size + 1)", ABI],
  ["msg-length-min", "src/abi/messages.ts", "length < MSG.headerSize ||", "length < MSG.headerSize - 1 ||", ABI],
  ["msg-count-max", "src/abi/messages.ts", "if (count > MAX_VALUES)", "if (count > MAX_VALUES + 1)", ABI],
  ["msg-kind-dropped", "src/abi/messages.ts", "if (got !== kind)", "if (false)", ABI],
  ["val-header-room", "src/abi/values.ts", "c.end - c.offset < VALUE_HEADER_SIZE", "c.end - c.offset <= VALUE_HEADER_SIZE", ABI],
  ["val-padding-dropped", "src/abi/values.ts", "len > c.end - p || pad8(len) > c.end - p", "len > c.end - p", ABI],
  ["val-scalar-length", "src/abi/values.ts", "&& len !== 8)", "&& len > 8)", ABI],
  ["val-nul-empty", "src/abi/values.ts", "if (len === 0 || c.bytes[p + len - 1] !== 0)", "if (c.bytes[p + len - 1] !== 0)", ABI],
  ["val-string-room", "src/abi/values.ts", "const room = c.end - start - 1;", "const room = c.end - start;", ABI],
  ["val-string-3x-limit", "src/abi/values.ts", "Math.min(room, 3 * value.length)", "3 * value.length", ABI],
  ["val-i32-max", "src/abi/values.ts", "value > I32_MAX)", "value > I32_MAX + 1)", ABI],
  ["val-u32-min", "src/abi/values.ts", "value < 0 || value > U32_MAX)", "value < -1 || value > U32_MAX)", ABI],
  ["val-i64-range-dropped", "src/abi/values.ts", "if ((signed ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big)) !== big)", "if (false)", ABI],
  ["cursor-room", "src/abi/write-cursor.ts", "length > this.room)", "length > this.room + 1)", ABI],
  ["cursor-u32-dropped", "src/abi/write-cursor.ts", "length > U32_MAX ||", "", ABI],
  ["cursor-pad8-32bit", "src/abi/write-cursor.ts", "return Math.ceil(n / 8) * 8;", "return (n + 7) & ~7;", ABI],
  ["cursor-record-floor", "src/abi/write-cursor.ts", "Math.ceil(to / PAGE) * PAGE", "Math.floor(to / PAGE) * PAGE", [T.writes, T.restore]],
  ["writes-last-page", "src/mem/host-writes.ts", "page <= last; page++)", "page < last; page++)", [T.writes, T.restore]],
  ["writes-empty-length", "src/mem/host-writes.ts", "address + Math.max(length, 1) - 1", "address + length - 1", [T.writes, T.restore]],
  ["writes-drain-drops-host", "src/mem/host-writes.ts", "Array.from(this.pages.subarray(0, this.count))", "Array.from(this.pages.subarray(0, 0))", [T.writes, T.restore]],
  ["writes-grow-lost", "src/mem/host-writes.ts", "bigger.set(this.pages);", "", [T.writes, T.restore]],
  ["rules-returns-dropped", "src/snapshot/host-function-rules.ts", "have.returns !== want.returns || ", "", [T.rules]],
  ["rules-param-count-dropped", "src/snapshot/host-function-rules.ts", "have.params.length !== want.params.length || ", "", [T.rules]],
  ["session-wide-out", "src/sandbox/call-session.ts", "if (size !== 1 && PROTOCOL_PORTS.includes(port))", "if (false)", [T.session, T.hostile]],
  ["session-in-as-out", "src/sandbox/call-session.ts", "case \"io-out\":", "case \"io-out\": case \"io-in\":", [T.session, T.hostile]],
  ["session-fault-range", "src/sandbox/call-session.ts", "port < PORT_FAULT_BASE + FAULT_VECTORS", "port <= PORT_FAULT_BASE + FAULT_VECTORS", [T.session]],
  ["session-return-tag-dropped", "src/sandbox/call-session.ts", " || expected !== tagOf(wantReturn)", "", [T.session, "host-functions"]],
  ["session-result-type-dropped", "src/sandbox/call-session.ts", "if (result.type !== returns)", "if (false)", [T.session, T.misbehave]],
  ["state-rsp-top", "src/snapshot/file/state-checks.ts", "rsp > BigInt(layout.stack.top)", "rsp > BigInt(layout.stack.top) + 8n", [T.validation, T.fpuAddress]],
  ["state-rsp-align-dropped", "src/snapshot/file/state-checks.ts", " || rsp % 8n !== 0n", "", [T.validation, T.fpuAddress]],
  ["state-xstate-opmask", "src/snapshot/file/state-checks.ts", "| (1n << 9n);", "| (1n << 9n) | (1n << 5n);", [T.validation]],
  ["state-header-last-word", "src/snapshot/file/state-checks.ts", "at < 576; at += 8)", "at < 568; at += 8)", [T.validation]],
  ["state-rflags-bit1-dropped", "src/snapshot/file/state-checks.ts", " || (cpu.rflags & 0x2n) === 0n", "", [T.validation]],
  ["state-mxcsr", "src/snapshot/file/state-checks.ts", "x.getUint32(24, true) > 0xffff", "x.getUint32(24, true) > 0x1ffff", [T.validation]],
  ["json-depth", "src/snapshot/file/json-checks.ts", "if (depth > MAX_JSON_DEPTH)", "if (depth > MAX_JSON_DEPTH + 1)", [T.json]],
  ["json-escape-dropped", "src/snapshot/file/json-checks.ts", "if (b === BACKSLASH) i++;", "if (b === BACKSLASH) ;", [T.json]],
  ["json-bytes", "src/snapshot/file/json-checks.ts", "bytes.byteLength > MAX_JSON_BYTES)", "bytes.byteLength > MAX_JSON_BYTES + 1)", [T.json]],
  ["json-integer-max", "src/snapshot/file/json-checks.ts", "value < min || value > max)", "value < min || value > max + 1)", [T.json, T.validation]],
  ["tables-kernel-user", "src/mem/page-tables.ts", "\"kernel-r\": [PRESENT | ACCESSED, NX_HIGH]", "\"kernel-r\": [PRESENT | USER | ACCESSED, NX_HIGH]", [T.tables, T.walk, T.supervisor]],
  ["tables-high-half-dropped", "src/mem/page-tables.ts", "(Math.floor(address / 2 ** 32) | high) >>> 0]", "high >>> 0]", [T.tables, T.walk, T.supervisor]],
  ["tables-leaf-nx", "src/mem/page-tables.ts", "\"user-r\": [PRESENT | USER | ACCESSED, NX_HIGH]", "\"user-r\": [PRESENT | USER | ACCESSED, 0]", [T.tables, T.walk, T.supervisor]],
  ["supervisor-last-page", "src/mem/supervisor-pages.ts", "offset < region.bytes.length; offset += PAGE)", "offset < region.bytes.length - PAGE; offset += PAGE)", [T.supervisor]],
  ["supervisor-tables-end", "src/mem/supervisor-pages.ts", "tablesEnd = tablesFirst + layout.pageTables.size / PAGE;", "tablesEnd = tablesFirst + layout.pageTables.size / PAGE - 1;", [T.supervisor]],
  ["walk-wx-dropped", "src/hypervisor/process/page-walk.ts", "if (writable && executable)", "if (false)", [T.walk]],
  ["walk-table-bound", "src/hypervisor/process/page-walk.ts", "if (address + PAGE > memory.byteLength) refuse", "if (address > memory.byteLength) refuse", [T.walk]],
  ["walk-identity-dropped", "src/hypervisor/process/page-walk.ts", "page + count > pages || frame !== page * PAGE", "page + count > pages", [T.walk]],
  ["walk-pml4-second", "src/hypervisor/process/page-walk.ts", "for (let i = 1; i < ENTRIES; i++)", "for (let i = 2; i < ENTRIES; i++)", [T.walk]],
  ["walk-large-reserved-dropped", "src/hypervisor/process/page-walk.ts", "if (e2 & LARGE_LOW_RESERVED)", "if (false)", [T.walk],
    "equivalent: bits 12-20 of a 2 MiB leaf are frame bits to the identity check, which refuses the same entries"],
  ["walk-dir-user-ignored", "src/hypervisor/process/page-walk.ts", "if (!(e & upper & dirLow & USER)) return;", "if (!(e & upper & USER)) return;", [T.walk]],
  ["walk-1g-dropped", "src/hypervisor/process/page-walk.ts", "if (lo(pdpt, i3) & LARGE) refuse(\"a 1 GiB page\");", "", [T.walk]],
  ["exits-wide-port", "src/hypervisor/process/exits.ts", "for (let p = port; p < port + size; p++)", "for (let p = port; p < port + 1; p++)", [T.hostile]],
];

const args = process.argv.slice(2);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const chosen = MUTANTS.filter(([id]) => only === undefined || id === only);
if (chosen.length === 0) throw new Error(`no mutant ${only}`);

const compiled = (file) => path.join(root, "dist", file.replace(/\.ts$/, ".js"));
/** `find` in compiled code, where tsc may have re-indented it or broken a line: any run of whitespace matches any other. */
const pattern = (find) => new RegExp(find.trim().split(/\s+/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+"), "g");
for (const [id, file, find] of chosen) {
  const inSource = readFileSync(path.join(root, file), "utf8").split(find).length - 1;
  const inCompiled = [...readFileSync(compiled(file), "utf8").matchAll(pattern(find))].length;
  if (inSource !== 1 || inCompiled !== 1) throw new Error(`mutant ${id}: ${JSON.stringify(find)} occurs ${inSource} times in ${file} and ${inCompiled} in its compiled file (build first?)`);
}
if (args.includes("--list")) {
  for (const [id, file, find, replace, tests] of chosen) console.log(`${id}\t${file}\t${JSON.stringify(find)} -> ${JSON.stringify(replace)}\t${tests.join(", ")}`);
  process.exit(0);
}

const hash = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");
const originals = new Map([...new Set(chosen.map(([, file]) => compiled(file)))].map((f) => [f, { text: readFileSync(f, "utf8"), hash: hash(f) }]));

/** Runs the test files; returns the names of failed tests (empty: all passed). */
function runTests(tests) {
  const files = tests.map((t) => path.join(root, "dist/test", `${t}.test.js`));
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", ...files], { cwd: root, encoding: "utf8", timeout: 180_000, maxBuffer: 64 << 20 });
  if (r.status === 0) return [];
  const failed = [...(r.stdout ?? "").matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]).filter((name) => !name.endsWith(".test.js"));
  return failed.length > 0 ? failed : [`exit status ${r.status ?? r.signal}`];
}

const baseline = runTests([...new Set(chosen.flatMap(([, , , , tests]) => tests))]);
if (baseline.length > 0) throw new Error(`the unmutated tests fail: ${baseline.join("; ")}`);

const results = [];
try {
  for (const [id, file, find, replace, tests, equivalent] of chosen) {
    const target = compiled(file);
    const original = originals.get(target).text;
    let failed;
    try {
      writeFileSync(target, original.replace(pattern(find), () => replace));
      failed = runTests(tests);
    } finally {
      writeFileSync(target, original);
    }
    results.push({ id, file, killed: failed.length > 0, equivalent: equivalent !== undefined });
    const verdict = failed.length > 0 ? "killed  " : equivalent ? "equivalent" : "SURVIVED";
    console.log(`${verdict} ${id} (${file})${failed.length > 0 ? `: ${failed.slice(0, 2).join("; ")}` : equivalent ? `: ${equivalent}` : ""}`);
  }
} finally {
  for (const [file, { text, hash: before }] of originals) {
    if (hash(file) !== before) writeFileSync(file, text);
    if (hash(file) !== before) throw new Error(`${file} could not be put back`);
  }
}
const git = spawnSync("git", ["diff", "--quiet", "--", "src"], { cwd: root });
if (git.status !== 0) throw new Error("src/ differs from git after the run: a mutant may be in place");
const survived = results.filter((r) => !r.killed && !r.equivalent);
const equivalent = results.filter((r) => !r.killed && r.equivalent).length;
const killed = results.filter((r) => r.killed).length;
console.log(`\n${killed} of ${results.length} mutants killed, ${equivalent} equivalent${survived.length ? `; survived: ${survived.map((r) => r.id).join(", ")}` : ""}`);
process.exitCode = survived.length > 0 ? 1 : 0;
