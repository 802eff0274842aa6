/**
 * Regression tests for what the fuzzers (fuzz/) found: a host function's thrown value or
 * result that breaks when printed or inspected, and guest text with a NUL quoted in a host
 * error, each gave a raw error, a hang or a wrong error code instead of the typed error.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HostFunctionError, SandboxBuilder, type Sandbox, type VmletError } from "../src/index.js";
import { MessageKind, PORT_HOST_CALL } from "../src/abi/constants.js";
import { encode, message, stringValue } from "../fuzz/wire.js";
import { guestPath } from "./helpers.js";

const HANG_GUARD_MS = 10_000;
const TAG_VOID = 0;

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

const unprintable: ReadonlyArray<readonly [string, () => unknown]> = [
  ["a null-prototype object", () => Object.create(null)],
  ["a revoked proxy", revokedProxy],
  ["an Error whose message getter throws", () => Object.defineProperty(new Error("x"), "message", { get: () => { throw new Error("getter"); } })],
  ["an object whose toString throws", () => ({ toString: () => { throw new Error("toString"); } })],
];

describe("HostFunctionError describes any thrown value without throwing itself", () => {
  for (const [what, make] of unprintable) {
    test(what, () => {
      const error = new HostFunctionError("f", make());
      assert.equal(error.code, "HOST_FUNCTION_THREW");
      assert.match(error.message, /host function "f" threw: a value that cannot be printed/);
    });
  }
});

/** Rejects if `promise` has not settled within the guard: a hang fails the test instead of stalling the suite. */
async function settles<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the call never settled")), HANG_GUARD_MS)));
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

describe("host functions whose result or thrown value is hostile", () => {
  let sandbox: Sandbox;
  let behave: () => unknown = () => undefined;
  before(async () => {
    sandbox = await new SandboxBuilder()
      .guest(guestPath("fuzz"))
      .timeoutMs(5000)
      .hostFunction("hostile", [], "void", () => behave() as void)
      .build();
  });
  after(() => sandbox?.close());

  const threw = (error: unknown): boolean => (error as VmletError).code === "HOST_FUNCTION_THREW";

  for (const [what, make] of unprintable) {
    test(`callSync: a host function throwing ${what} is HOST_FUNCTION_THREW`, () => {
      behave = () => { throw make(); };
      assert.throws(() => sandbox.callSync("call_host", "hostile", TAG_VOID), threw);
    });

    test(`call: a host function rejecting with ${what} is HOST_FUNCTION_THREW, and the call settles`, async () => {
      behave = () => Promise.reject(make());
      await assert.rejects(settles(sandbox.call("call_host", "hostile", TAG_VOID)), threw);
    });
  }

  test("call: a result whose `then` getter throws is HOST_FUNCTION_THREW", async () => {
    behave = () => Object.defineProperty({}, "then", { get: () => { throw new Error("then getter"); } });
    await assert.rejects(settles(sandbox.call("call_host", "hostile", TAG_VOID)), threw);
  });

  test("call: an async host function rejecting with an Error whose message has a NUL is HOST_FUNCTION_THREW, and the call settles", async () => {
    behave = () => Promise.reject(new Error("before\0after"));
    await assert.rejects(settles(sandbox.call("call_host", "hostile", TAG_VOID)), (e: unknown) => threw(e) && /before\0after/.test((e as Error).message));
  });

  test("callSync: a host function throwing an Error whose message has a NUL is HOST_FUNCTION_THREW, not ARGUMENT_MISMATCH", () => {
    behave = () => { throw new Error("before\0after"); };
    assert.throws(() => sandbox.callSync("call_host", "hostile", TAG_VOID), threw);
  });

  test("a guest naming a host function with a NUL inside gets HOST_FUNCTION_MISSING, not ARGUMENT_MISMATCH", () => {
    // The host's error text quotes the name; written back as a C string, its NUL made the host throw mid-call.
    const hostCall = encode(message(MessageKind.HostCall, 0, TAG_VOID, [stringValue("hostile\0")]));
    const script = new Uint8Array(16 + hostCall.length); // guests/fuzz.c run_script: [port][form][offset][length][bytes]
    const view = new DataView(script.buffer);
    view.setUint32(0, PORT_HOST_CALL, true);
    view.setUint32(12, hostCall.length, true);
    script.set(hostCall, 16);
    assert.throws(() => sandbox.callSync("script_void", script), (e: unknown) => (e as VmletError).code === "HOST_FUNCTION_MISSING");
  });
});
