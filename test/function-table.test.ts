/**
 * The guest's function table as the host reads it after start-up (src/abi/function-table.ts):
 * guest memory is untrusted, so every count, address, name and type tag is checked, each
 * failure a GuestProtocolError.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readFunctionTable } from "../src/abi/function-table.js";
import { CB, FN_ENTRY, MAX_NAME, MAX_PARAMS, TAG } from "../src/abi/constants.js";
import { GuestProtocolError } from "../src/index.js";

const CONTROL = 0x1000;
const TABLE = 0x2000;
const STRINGS = 0x8000;

interface Entry {
  name?: string | number; // a string is placed in memory; a number is a raw address
  params?: number[] | number;
  nParams?: number;
  ret?: number;
}

/** Guest memory holding a control block that points at a table of `entries`. */
function memoryWith(entries: Entry[], options: { count?: number; table?: bigint; size?: number } = {}): Uint8Array {
  const memory = new Uint8Array(options.size ?? 0x10000);
  const view = new DataView(memory.buffer);
  let strings = STRINGS;
  const place = (bytes: Uint8Array): number => {
    memory.set(bytes, strings);
    const at = strings;
    strings += bytes.length + 8;
    return at;
  };
  entries.forEach((e, i) => {
    const at = TABLE + i * FN_ENTRY.size;
    const name = typeof e.name === "number" ? e.name : place(new TextEncoder().encode(`${e.name ?? `f${i}`}\0`));
    const params = typeof e.params === "number" ? e.params : place(Uint8Array.from(e.params ?? [TAG.i32]));
    view.setBigUint64(at + FN_ENTRY.name, BigInt(name), true);
    view.setBigUint64(at + FN_ENTRY.params, BigInt(params), true);
    view.setUint32(at + FN_ENTRY.nParams, e.nParams ?? (Array.isArray(e.params) ? e.params.length : 1), true);
    view.setUint32(at + FN_ENTRY.ret, e.ret ?? TAG.i32, true);
  });
  view.setBigUint64(CONTROL + CB.fnTableAddress, options.table ?? BigInt(TABLE), true);
  view.setUint32(CONTROL + CB.fnCount, options.count ?? entries.length, true);
  return memory;
}

const refused = (memory: Uint8Array, pattern: RegExp): void => {
  assert.throws(() => readFunctionTable(memory, CONTROL), (e: unknown) => e instanceof GuestProtocolError && pattern.test(e.message), String(pattern));
};

test("a well-formed table gives each function's name, index, parameters and result", () => {
  const functions = readFunctionTable(memoryWith([{ name: "add", params: [TAG.i32, TAG.i32] }, { name: "echo", params: [TAG.string], ret: TAG.string }, { name: "noop", params: [], ret: TAG.void }]), CONTROL);
  assert.deepEqual([...functions.values()], [
    { name: "add", index: 0, params: ["i32", "i32"], returns: "i32" },
    { name: "echo", index: 1, params: ["string"], returns: "string" },
    { name: "noop", index: 2, params: [], returns: "void" },
  ]);
});

test("counts and addresses: too many functions, a table or parameter list outside memory", () => {
  refused(memoryWith([], { count: 4097 }), /more than 4096/);
  refused(memoryWith([{}], { table: 0xfff0n }), /function table at 0xfff0 lies outside/);
  refused(memoryWith([{}], { table: 2n ** 64n - 8n }), /function table .* lies outside/);
  refused(memoryWith([{ params: 0x10000 - 0, nParams: 1 }]), /parameters of "f0" .* lies outside/);
  refused(memoryWith([{ nParams: MAX_PARAMS + 1, params: 0x9000 }]), new RegExp(`more than ${MAX_PARAMS}`));
  refused(memoryWith([{ name: 0x10000 }]), /name of function 0 at 0x10000 lies outside/);
});

test("names: a NUL within the limit, the name grammar, no duplicates", () => {
  assert.ok(readFunctionTable(memoryWith([{ name: "a".repeat(MAX_NAME) }]), CONTROL).has("a".repeat(MAX_NAME)));
  refused(memoryWith([{ name: "a".repeat(MAX_NAME + 1) }]), /NUL-terminated string of at most/);
  refused(memoryWith([{ name: "9lives" }]), /invalid name/);
  refused(memoryWith([{ name: "has space" }]), /invalid name/);
  refused(memoryWith([{ name: "twice" }, { name: "twice" }]), /exports "twice" twice/);
  const noNul = memoryWith([{ name: 0xff00 }]);
  noNul.fill(0x41, 0xff00);
  refused(noNul, /NUL-terminated/);
});

test("type tags: void or unknown parameter tags and unknown result tags are refused", () => {
  refused(memoryWith([{ params: [TAG.void] }]), /parameter 0 has an invalid type tag/);
  refused(memoryWith([{ params: [TAG.i32, 200] }]), /parameter 1 has an invalid type tag/);
  refused(memoryWith([{ ret: 77 }]), /invalid return type tag/);
});
