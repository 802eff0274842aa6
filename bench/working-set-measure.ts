/**
 * The first call after fromSnapshot() of a guest with a real working set: SQLite holding
 * 10,000 rows (examples/sqlite-guest/), a query that reads the whole table. The first call
 * pays a page fault for every page it touches that its VM does not map yet; the second one
 * on the same sandbox is the reference. Issue 17's target: first ≤ 3 × second.
 */
import { guestClock, sqliteGuest } from "../examples/sqlite-guest/sqlite-sandbox.js";
import { Sandbox, SandboxBuilder, type Snapshot } from "../src/index.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { nowNs, sleep, usSince } from "./measure.js";

export const WORKING_SET_ROWS = 10_000;
const QUERY = ["SELECT count(*), sum(v) FROM t WHERE name LIKE '%7%'", "[]"] as const;

export interface WorkingSetSamples {
  first: number[];
  second: number[];
}

/** A snapshot of the SQLite guest holding WORKING_SET_ROWS rows. */
export async function sqliteFixture(): Promise<Snapshot> {
  const sb = await new SandboxBuilder().guest(sqliteGuest).hostFunction(guestClock.name, guestClock.params, guestClock.returns, guestClock.impl).heapSize(64 << 20).build();
  try {
    sb.callSync("exec", "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL)");
    sb.callSync("exec", `BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${WORKING_SET_ROWS}) INSERT INTO t SELECT x, 'name-' || x, x * 1.5 FROM c; COMMIT;`);
    return sb.snapshot();
  } finally {
    sb.close();
  }
}

/** fromSnapshot(), then the query twice, timed apart; `reuseVms` off: a new VM each time. */
export async function measureWorkingSet(snap: Snapshot, iterations: number, reuseVms: boolean, into: WorkingSetSamples, idleMs: number): Promise<void> {
  setVmParking(reuseVms);
  try {
    for (let i = -2; i < iterations; i++) {
      await sleep(idleMs);
      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [guestClock] });
      try {
        const t0 = nowNs();
        const first = sb.callSync("query", ...QUERY);
        const t1 = nowNs();
        const second = sb.callSync("query", ...QUERY);
        const t2 = nowNs();
        if (first !== second) throw new Error(`working set: the query gave ${String(first)}, then ${String(second)}`);
        if (i < 0) continue;
        into.first.push(usSince(t0, t1));
        into.second.push(usSince(t1, t2));
      } finally {
        sb.close();
      }
    }
  } finally {
    setVmParking(true);
  }
}
