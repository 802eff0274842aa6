/**
 * invokeHostAsync (src/sandbox/host-wait.ts): however an async host function ends, the wait
 * settles. If writing its outcome into guest memory fails (a bug or an exhausted buffer), the
 * call fails with that error instead of waiting forever.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CallSession } from "../src/sandbox/call-session.js";
import { invokeHostAsync } from "../src/sandbox/host-wait.js";
import type { HostFunction } from "../src/sandbox/host-functions.js";

function session(fail: Error): CallSession {
  const partial: Partial<CallSession> = {
    msLeft: () => undefined,
    hostReturned: () => {
      throw fail;
    },
    hostThrew: () => {
      throw fail;
    },
  };
  return partial as CallSession;
}

const fn = (impl: () => unknown): HostFunction => ({ name: "h", params: [], returns: "i32", impl }) as unknown as HostFunction;

for (const [outcome, impl] of [["resolves", () => Promise.resolve(7)], ["rejects", () => Promise.reject(new Error("host"))]] as const) {
  test(`an async host function that ${outcome}: a failure to write its outcome fails the wait instead of hanging it`, async () => {
    const boom = new Error("cannot write the outcome");
    await assert.rejects(invokeHostAsync(session(boom), { kind: "host-call", fn: fn(impl), args: [] }, () => undefined), (e: unknown) => e === boom);
  });
}
