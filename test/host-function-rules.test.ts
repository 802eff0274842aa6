/**
 * The host-function rule for snapshots (src/snapshot/host-function-rules.ts), on its own:
 * every function a snapshot was taken with must be offered with the same parameters and
 * the same return type; extras are fine. Each part of a signature is changed alone, so a
 * rule that stopped comparing one of them would let that change through. No VM needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReturnType, ValueType } from "../src/abi/types.js";
import { HostFunctionsIncompatibleError } from "../src/errors/errors.js";
import { HostFunctionRegistry } from "../src/sandbox/host-functions.js";
import { requireSuperset, type HostFunctionSignature } from "../src/snapshot/host-function-rules.js";

const REQUIRED: HostFunctionSignature = { name: "lookup", params: ["string", "u32"], returns: "i64" };

function offering(...fns: Array<[string, ValueType[], ReturnType]>): HostFunctionRegistry {
  const registry = new HostFunctionRegistry();
  for (const [name, params, returns] of fns) registry.register(name, params, returns, () => undefined);
  return registry;
}

/** The error requireSuperset throws for `offered`, or undefined when it accepts. */
function refusal(offered: HostFunctionRegistry, required: readonly HostFunctionSignature[] = [REQUIRED]): HostFunctionsIncompatibleError | undefined {
  try {
    requireSuperset(required, offered, "restore()");
    return undefined;
  } catch (error) {
    assert.ok(error instanceof HostFunctionsIncompatibleError, `untyped: ${String(error)}`);
    return error;
  }
}

test("the same signature, with extra functions beside it, is accepted", () => {
  assert.equal(refusal(offering(["lookup", ["string", "u32"], "i64"])), undefined);
  assert.equal(refusal(offering(["other", [], "void"], ["lookup", ["string", "u32"], "i64"])), undefined);
  assert.equal(refusal(offering(), []), undefined, "a snapshot without host functions needs none");
});

test("a different return type alone is a mismatch", () => {
  for (const returns of ["i32", "u64", "void", "string", "f64"] as const) {
    const e = refusal(offering(["lookup", ["string", "u32"], returns]));
    assert.deepEqual(e?.missing, [], returns);
    assert.deepEqual(e?.mismatched, [`lookup(string, u32) -> i64 (offered lookup(string, u32) -> ${returns})`], returns);
  }
});

test("fewer, more or different parameters are a mismatch", () => {
  const cases: ValueType[][] = [["string"], [], ["string", "u32", "u32"], ["u32", "string"], ["string", "i32"], ["bytes", "u32"]];
  for (const params of cases) {
    const e = refusal(offering(["lookup", params, "i64"]));
    assert.equal(e?.mismatched.length, 1, `(${params.join(", ")})`);
    assert.deepEqual(e?.missing, [], `(${params.join(", ")})`);
  }
});

test("a missing function is listed as missing, and every problem is listed at once", () => {
  const required: HostFunctionSignature[] = [REQUIRED, { name: "log_it", params: ["string"], returns: "void" }, { name: "now", params: [], returns: "u64" }];
  const e = refusal(offering(["lookup", ["string", "u32"], "u64"], ["now", [], "u64"]), required);
  assert.deepEqual(e?.missing, ["log_it(string) -> void"]);
  assert.deepEqual(e?.mismatched, ["lookup(string, u32) -> i64 (offered lookup(string, u32) -> u64)"]);
});
