/** The snapshot test guest (guests/snapshot.c) in a known state, shared by the snapshot tests. */
import assert from "node:assert/strict";
import { SandboxBuilder, type HostFunctionDefinition, type Sandbox, type Snapshot } from "../src/index.js";
import { guestPath } from "./helpers.js";

export const addOne = { name: "host_add_one", params: ["i32"], returns: "i32", impl: (x: number) => x + 1 } as unknown as HostFunctionDefinition;

export async function buildSnapshotGuest(heapSize = 1 << 20, configure: (b: SandboxBuilder) => SandboxBuilder = (b) => b): Promise<Sandbox> {
  return configure(new SandboxBuilder().guest(guestPath("snapshot")).heapSize(heapSize).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1)).build();
}

/** A sandbox with known state (counter 3, value 2.5, heap pattern 7, round-down), and its snapshot. */
export async function prepared(heapSize?: number): Promise<{ sb: Sandbox; snap: Snapshot }> {
  const sb = await buildSnapshotGuest(heapSize);
  for (let i = 0; i < 3; i++) sb.callSync("bump");
  sb.callSync("set_value", 2.5);
  assert.equal(sb.callSync("heap_fill", 20000, 7), true);
  sb.callSync("set_rounding", 1); // round toward −∞
  return { sb, snap: sb.snapshot() };
}

/** Checks the state `prepared()` made. */
export function assertPreparedState(sb: Sandbox): void {
  assert.equal(sb.callSync("get_counter"), 3, "static counter");
  assert.equal(sb.callSync("get_value"), 2.5, "double in a static");
  assert.equal(sb.callSync("heap_check", 7), true, "heap pattern");
  assert.equal(sb.callSync("get_rounding"), 1, "MXCSR rounding mode (SSE control state)");
  assert.equal(sb.callSync("scratch_sum"), 0, "scratch pages are back to zero");
}
