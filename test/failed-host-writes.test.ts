/**
 * Issue 11, item 2, through a real guest: a call that fails while the host writes guest
 * memory (a bad argument after a string, a string too large in UTF-8, a host result too
 * large for the output buffer) leaves nothing of its data after restore(): the guest
 * reads both I/O buffers raw (guests/types.c buffer_bytes) and finds no trace of it.
 * The host-side mechanism is unit-tested in host-writes.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ArgumentMismatchError, BufferTooSmallError, HostFunctionError, SandboxBuilder, type Sandbox, type Snapshot } from "../src/index.js";
import { guestPath } from "./helpers.js";

const MARK = "LEAKé"; // 5 UTF-16 units, 6 UTF-8 bytes: 12 000 of them fit 64 KiB as units, not as bytes
const WINDOW = 60_000;

describe("a call that fails half-way through a host write leaves nothing after restore()", () => {
  let sb: Sandbox;
  let snap: Snapshot;
  before(async () => {
    sb = await new SandboxBuilder()
      .guest(guestPath("types"))
      .hostFunction("h_string", ["string"], "string", () => MARK.repeat(12_000))
      .build();
    snap = sb.snapshot();
  });
  after(() => sb?.close());

  /** Whether either I/O buffer, as the guest reads it, holds the marker. */
  function leaks(): boolean {
    const text = [0, 1].map((which) => Buffer.from(sb.callSync("buffer_bytes", which, 0, WINDOW) as Uint8Array).toString("latin1")).join("");
    return text.includes("LEAK");
  }

  const failures: Array<[string, () => unknown, new (...a: never[]) => Error]> = [
    ["a bad argument after a string", () => sb.callSync("sixteen", 1, 2, 3n, 4n, 5, 6, true, MARK.repeat(1000), "not bytes", 1, 2, 3n, 4n, 5, 6, true), ArgumentMismatchError],
    ["a string that fits in UTF-16 units but not in UTF-8 bytes", () => sb.callSync("echo_string", MARK.repeat(12_000)), BufferTooSmallError],
    ["bytes larger than the input buffer", () => sb.callSync("echo_bytes", new Uint8Array(Buffer.from("LEAK".repeat(17_500)))), BufferTooSmallError],
    ["a host result larger than the output buffer", () => sb.callSync("host_echo_string", "x"), HostFunctionError],
  ];

  for (const deferred of [false, true]) {
    for (const [what, fail, error] of failures) {
      test(`${what}${deferred ? " (after a deferred restore)" : ""}`, () => {
        sb.restore(snap, { deferred });
        assert.throws(fail, error);
        sb.restore(snap);
        assert.equal(leaks(), false, "the next request reads the failed one's data");
      });
    }
  }

  test("the marker is visible to the guest when there is no restore (the check can see a leak)", () => {
    sb.restore(snap);
    assert.throws(failures[0]![1], ArgumentMismatchError);
    assert.equal(leaks(), true);
    sb.restore(snap);
  });
});
