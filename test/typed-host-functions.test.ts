/**
 * defineHostFunction: one typed definition that works on the builder (both overloads and
 * hostFunctions([...])), createSandbox, Sandbox.fromSnapshot, SandboxPool and
 * registerHostFunction. The `@ts-expect-error` lines are the type-level test: this file is
 * compiled by tsc in `npm test`, and an expected error that does not occur fails the build.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidConfigError, Sandbox, SandboxBuilder, SandboxPool, createSandbox, defineHostFunction, type HostFunctionDefinition,
} from "../src/index.js";
import { guestPath } from "./helpers.js";

/** guests/types.c's host_echo_i32 calls h_i32(i32) -> i32; host_echo_i64 calls h_i64(i64) -> i64. */
const double = defineHostFunction("h_i32", ["i32"], "i32", (a) => a * 2);
const negate = defineHostFunction("h_i64", ["i64"], "i64", (a: bigint) => -a);
const typedSet: readonly HostFunctionDefinition[] = [double, negate];

/** Never run: each wrong implementation below must be a compile error. */
export function typeChecks(): void {
  // @ts-expect-error an i32 parameter is a number, not a string
  defineHostFunction("bad_param", ["i32"], "i32", (a: string) => a.length);
  // @ts-expect-error an i64 result is a bigint, not a number
  defineHostFunction("bad_result", ["i64"], "i64", (a: bigint) => Number(a));
  // @ts-expect-error a string result cannot come from an async function returning a number
  defineHostFunction("bad_async", [], "string", async () => 1);
  // @ts-expect-error one parameter too many for the declared params
  defineHostFunction("too_many", ["f64"], "void", (a: number, b: number) => void (a + b));
  // @ts-expect-error "i128" is no ABI type
  defineHostFunction("bad_type", ["i128"], "void", () => undefined);
  // The inferred types flow into the impl: a is a number, so this is a number result.
  const inferred = defineHostFunction("ok", ["u32", "string"], "u32", (a, s) => a + s.length);
  // @ts-expect-error the definition keeps its precise impl type: it takes (number, string)
  inferred.impl("x", "y");
  // @ts-expect-error the builder's four-part overload checks the impl the same way
  new SandboxBuilder().hostFunction("h", ["bool"], "bool", (b: number) => b > 0);
}

async function echoThroughHost(sb: Sandbox): Promise<void> {
  assert.equal(sb.callSync("host_echo_i32", 21), 42);
  assert.equal(await sb.call("host_echo_i64", 5n), -5n);
}

test("a defineHostFunction result works on the builder, both as one definition and as a list", async () => {
  for (const builder of [
    new SandboxBuilder().hostFunction(double).hostFunction(negate),
    new SandboxBuilder().hostFunctions(typedSet),
  ]) {
    const sb = await builder.guest(guestPath("types")).build();
    try {
      await echoThroughHost(sb);
    } finally {
      sb.close();
    }
  }
});

test("... and in createSandbox, Sandbox.fromSnapshot, SandboxPool and registerHostFunction", async () => {
  const built = await createSandbox({ guest: guestPath("types"), hostFunctions: [double, negate] });
  const snapshot = built.snapshot();
  try {
    await echoThroughHost(built);
  } finally {
    built.close();
  }
  const resumed = await Sandbox.fromSnapshot(snapshot, { hostFunctions: [double, negate] });
  try {
    await echoThroughHost(resumed);
    // Replacing through registerHostFunction(definition) takes effect on the next host call.
    resumed.registerHostFunction(defineHostFunction("h_i32", ["i32"], "i32", (a) => a + 1));
    assert.equal(resumed.callSync("host_echo_i32", 21), 22);
  } finally {
    resumed.close();
  }
  const pool = new SandboxPool(snapshot, { size: 1, hostFunctions: typedSet });
  try {
    await pool.run(echoThroughHost);
  } finally {
    await pool.close();
  }
});

test("defineHostFunction checks its definition at once, as registering does", () => {
  assert.throws(() => defineHostFunction("not a name", [], "void", () => undefined), InvalidConfigError);
  const untyped = defineHostFunction as (...args: unknown[]) => unknown;
  assert.throws(() => untyped("f", ["i128"], "void", () => undefined), /params must be an array/);
  assert.throws(() => untyped("f", [], "void", "not a function"), /implementation must be a function/);
  assert.throws(() => new SandboxBuilder().hostFunctions([{ name: "x" } as unknown as HostFunctionDefinition]), /hostFunctions\[0\]/);
  const register = SandboxBuilder.prototype.hostFunction as (this: SandboxBuilder, ...args: unknown[]) => SandboxBuilder;
  assert.throws(() => register.call(new SandboxBuilder(), 42), /definition object/);
});
