/**
 * sb.stats(): calls, exits and host calls counted exactly for calls whose exits are known
 * (the demo guest's add is one run; greet("x", n) makes n host calls to log_line, so n + 1
 * runs), guest time accumulated, the latest restore's page count and the memory size.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { HostFunctionMissingError, SandboxBuilder, type Sandbox } from "../src/index.js";
import { guestPath } from "./helpers.js";

async function demo(): Promise<Sandbox> {
  // "warn": greet's VMLET_INFO record is filtered in the guest, so it makes no exit.
  return new SandboxBuilder().guest(guestPath("demo")).maxGuestLogLevel("warn").hostFunction("log_line", ["string"], "void", () => undefined).build();
}

test("stats() counts calls, exits and host calls of both call() and callSync()", async () => {
  const sb = await demo();
  try {
    const fresh = sb.stats();
    assert.deepEqual({ ...fresh, guestTimeNs: 0 }, { calls: 0, guestTimeNs: 0, exits: 0, hostCalls: 0, lastRestore: undefined, memorySize: sb.memorySize, heap: fresh.heap });
    assert.equal(fresh.guestTimeNs, 0, "start-up is not a call");
    sb.callSync("add", 1, 2);
    assert.deepEqual(pick(sb.stats()), { calls: 1, exits: 1, hostCalls: 0 });
    assert.equal(sb.callSync("greet", "x", 3), 3);
    assert.deepEqual(pick(sb.stats()), { calls: 2, exits: 5, hostCalls: 3 });
    assert.equal(await sb.call("greet", "y", 2), 2);
    assert.equal(await sb.call("add", 2, 2), 4);
    assert.deepEqual(pick(sb.stats()), { calls: 4, exits: 9, hostCalls: 5 });
    assert.throws(() => sb.callSync("add", 1));
    assert.equal(sb.stats().calls, 4, "a call refused before it starts is not counted");
    assert.ok(sb.stats().guestTimeNs > 0);
    // A call to a host function nobody registered fails the call: an exit, not a host call.
    assert.throws(() => sb.callSync("call_ping"), HostFunctionMissingError);
    assert.deepEqual(pick(sb.stats()), { calls: 5, exits: 11, hostCalls: 5 });
  } finally {
    sb.close();
  }
});

test("stats() reports the latest restore's pages, a deferred one once it has run", async () => {
  const sb = await demo();
  try {
    const base = sb.snapshot();
    sb.callSync("repeat", "word", 2000);
    const report = sb.restore(base);
    assert.equal(report.remapped, false);
    assert.deepEqual(sb.stats().lastRestore, { pagesCopied: report.pagesCopied, remapped: false });
    assert.ok(report.pagesCopied > 0);
    sb.callSync("repeat", "word", 2000);
    const deferred = sb.restore(base, { deferred: true });
    assert.deepEqual(sb.stats().lastRestore, { pagesCopied: undefined, remapped: false }, "reading stats does not run the deferred part");
    sb.callSync("add", 1, 1);
    assert.deepEqual(sb.stats().lastRestore, { pagesCopied: deferred.pagesCopied, remapped: false });
  } finally {
    sb.close();
  }
});

function pick(stats: ReturnType<Sandbox["stats"]>): { calls: number; exits: number; hostCalls: number } {
  return { calls: stats.calls, exits: stats.exits, hostCalls: stats.hostCalls };
}
