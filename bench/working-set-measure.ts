/**
 * The first call after fromSnapshot() of a guest with a real working set: SQLite holding
 * 10,000 rows (examples/sqlite-guest/), a query that reads the whole table. The first call
 * pays a page fault for every page it touches that its VM does not map yet; the second one
 * on the same sandbox is the reference. Issue 17's target: first ≤ 3 × second.
 *
 * The first sandbox's first call records the snapshot's working set; a new process-backend
 * child populates it at start (src/snapshot/working-set.ts), which moves that cost from the
 * first call into fromSnapshot(): both are timed, with and without the populate.
 */
import { guestClock, sqliteGuest } from "../examples/sqlite-guest/sqlite-sandbox.js";
import { Sandbox, SandboxBuilder, type Snapshot } from "../src/index.js";
import { setWorkingSetPrefault } from "../src/hypervisor/process/process-machine.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { nowNs, sleep, usSince } from "./measure.js";

export const WORKING_SET_ROWS = 10_000;
const QUERY = ["SELECT count(*), sum(v) FROM t WHERE name LIKE '%7%'", "[]"] as const;

export interface WorkingSetSamples {
  fromSnapshot: number[];
  first: number[];
  second: number[];
}

export const noWorkingSetSamples = (): WorkingSetSamples => ({ fromSnapshot: [], first: [], second: [] });

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

/** fromSnapshot(), then the query twice, each timed; `reuseVms` off: a new VM each time; `prefault` off: new children do not populate the working set. */
export async function measureWorkingSet(snap: Snapshot, iterations: number, reuseVms: boolean, into: WorkingSetSamples, idleMs: number, prefault = true): Promise<void> {
  setVmParking(reuseVms);
  setWorkingSetPrefault(prefault);
  try {
    for (let i = -2; i < iterations; i++) {
      await sleep(idleMs);
      const tCreate = nowNs();
      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [guestClock] });
      const created = usSince(tCreate, nowNs());
      try {
        const t0 = nowNs();
        const first = sb.callSync("query", ...QUERY);
        const t1 = nowNs();
        const second = sb.callSync("query", ...QUERY);
        const t2 = nowNs();
        if (first !== second) throw new Error(`working set: the query gave ${String(first)}, then ${String(second)}`);
        if (i < 0) continue;
        into.fromSnapshot.push(created);
        into.first.push(usSince(t0, t1));
        into.second.push(usSince(t1, t2));
      } finally {
        sb.close();
      }
    }
  } finally {
    setVmParking(true);
    setWorkingSetPrefault(true);
  }
}
