/**
 * vmlet in the peer benchmark: a SandboxPool (checkout + call + background restore),
 * Sandbox.fromSnapshot + call, and SandboxBuilder.build() from the ELF + call. All use
 * guests/build/demo.elf with a 2 MiB input buffer (for the 1 MB call).
 */
import { Sandbox, SandboxBuilder, SandboxPool, type Snapshot } from "../../src/index.js";
import { guestPath } from "../../src/cli/paths.js";
import { batched, each, EXPECTED_COUNT, megabyte, now, summarize, type PeerRow, type Summary } from "./common.js";

export interface VmletPlan {
  rounds: number;
  perRound: number;
  fresh: number;
}

export interface VmletResult {
  rows: PeerRow[];
  /** Bare callSync("add", 1, 2) on a warm sandbox (no restores): per-batch means, interleaved with poolCycle. */
  bareCall: Summary;
  /** One sequential pool.run(sb => sb.callSync("add", 1, 2)) with size 1: checkout + call + restore. */
  poolCycle: Summary;
  /** The same with the 1 MB count_byte call (the restore copies the 256 input pages back). */
  poolMbCycle: Summary;
  /** Checkout when a spare restored sandbox is idle (size 2, sequential): the restore is fully off the path. */
  poolSpareCheckout: Summary;
  backend: string;
  memorySize: number;
}

const builder = (): SandboxBuilder => new SandboxBuilder().guest(guestPath("demo")).inputSize(2 << 20).maxGuestLogLevel("warn");

function check(value: unknown, expected: unknown, what: string): void {
  if (value !== expected) throw new Error(`${what} returned ${String(value)}, expected ${String(expected)}`);
}

export async function measureVmlet(plan: VmletPlan): Promise<VmletResult> {
  const data = megabyte();
  const template = await builder().build();
  template.callSync("noop");
  const snapshot: Snapshot = template.snapshot();
  const backend = `${template.backend.name} (${template.backend.flavour})`;
  const memorySize = template.memorySize;
  template.close();

  // Pool (size 1, sequential): checkout waits for the previous run's background restore.
  const pool = new SandboxPool(snapshot, { size: 1 });
  const warm = await Sandbox.fromSnapshot(snapshot);
  const bareMeans: number[] = [];
  const cycleMeans: number[] = [];
  const fresh: number[] = [];
  const inRunCall: number[] = [];
  const poolRound = async (record: boolean): Promise<void> => {
    const start = now();
    for (let i = 0; i < plan.perRound; i++) {
      const t0 = now();
      let t1 = 0;
      let t2 = 0;
      await pool.run((sb) => {
        t1 = now();
        check(sb.callSync("add", 1, 2), 3, "add");
        t2 = now();
      });
      if (record) {
        fresh.push((t1 - t0) * 1000);
        inRunCall.push((t2 - t1) * 1000);
      }
    }
    // Let the last restore land inside the round, so that every run's restore is counted.
    await pool.run(() => undefined);
    if (record) cycleMeans.push(((now() - start) * 1000) / (plan.perRound + 1));
  };
  const bareRound = (record: boolean): void => {
    const t0 = now();
    for (let i = 0; i < plan.perRound; i++) warm.callSync("add", 1, 2);
    if (record) bareMeans.push(((now() - t0) * 1000) / plan.perRound);
  };
  for (let w = 0; w < 3; w++) {
    bareRound(false);
    await poolRound(false);
  }
  for (let r = 0; r < plan.rounds; r++) {
    // Alternate the order so drift in the machine hits both alike.
    if (r % 2) {
      bareRound(true);
      await poolRound(true);
    } else {
      await poolRound(true);
      bareRound(true);
    }
  }
  const warmMb = batched(() => check(warm.callSync("count_byte", data, 7), EXPECTED_COUNT, "count_byte"), 15, 10, 2);
  const built = await builder().build();
  const builtCall = batched(() => built.callSync("add", 1, 2), plan.rounds, plan.perRound);
  const builtMb = batched(() => check(built.callSync("count_byte", data, 7), EXPECTED_COUNT, "count_byte"), 15, 10, 2);
  built.close();

  const mbCall: number[] = [];
  const mbCycle = await each(async () => {
    await pool.run((sb) => {
      const t0 = now();
      check(sb.callSync("count_byte", data, 7), EXPECTED_COUNT, "count_byte");
      mbCall.push((now() - t0) * 1000);
    });
    await pool.run(() => undefined); // wait for the restore of the 1 MB run
  }, Math.max(50, plan.rounds * 10));
  await pool.close();

  // A spare sandbox: size 2, sequential runs alternate, each checkout finds a restored sandbox idle.
  const spare = new SandboxPool(snapshot, { size: 2 });
  await Promise.all([spare.run(() => undefined), spare.run(() => undefined)]);
  const spareSamples: number[] = [];
  for (let i = 0; i < plan.rounds * plan.perRound; i++) {
    const t0 = now();
    await spare.run(() => {
      spareSamples.push((now() - t0) * 1000);
    });
    await new Promise((resolve) => setImmediate(resolve)); // the other sandbox's restore runs here, off the path
  }
  await spare.close();

  // fromSnapshot + first call, and build from the ELF + first call.
  const fromSnapshotFirst: number[] = [];
  const fromSnapshotFresh = await freshLoop(plan.fresh, () => Sandbox.fromSnapshot(snapshot), fromSnapshotFirst);
  const buildFirst: number[] = [];
  const buildFresh = await freshLoop(Math.max(20, plan.fresh >> 1), () => builder().build(), buildFirst);

  warm.close();

  const isolation = `KVM VM (${memorySize >> 20} MiB guest)`;
  const rows: PeerRow[] = [
    {
      peer: "vmlet",
      variant: "pool checkout (+ restore)",
      isolation,
      fresh: summarize(fresh),
      firstCall: summarize(inRunCall),
      call: summarize(inRunCall),
      mb: summarize(mbCall),
      memory: undefined,
      memoryKey: "vmlet-snapshot",
      notes: [
        "fresh = pool.run() until fn starts (size 1, sequential): it first restores the sandbox the previous run used",
        "calls are the first call after a restore (dirty-page tracking re-armed)",
        "memory: as fromSnapshot (pool sandboxes are fromSnapshot sandboxes)",
      ],
    },
    {
      peer: "vmlet",
      variant: "Sandbox.fromSnapshot",
      isolation,
      fresh: fromSnapshotFresh,
      firstCall: summarize(fromSnapshotFirst),
      call: summarize(bareMeans),
      mb: warmMb,
      memory: undefined,
      memoryKey: "vmlet-snapshot",
      notes: ["fresh: each sandbox is closed before the next, so after the first, fromSnapshot() reuses the closed one's VM (docs/snapshots.md § VM reuse; a new VM costs about 1 ms more on PVM, see npm run bench)", "call, 1 MB: on a warm sandbox (no restores); call = the bare callSync of the ratio check"],
    },
    {
      peer: "vmlet",
      variant: "build from ELF",
      isolation,
      fresh: buildFresh,
      firstCall: summarize(buildFirst),
      call: builtCall,
      mb: builtMb,
      memory: undefined,
      memoryKey: "vmlet-elf",
      notes: ["guest init runs at build(); memory is private (no snapshot to share)"],
    },
  ];
  return {
    rows,
    bareCall: summarize(bareMeans),
    poolCycle: summarize(cycleMeans),
    poolMbCycle: mbCycle,
    poolSpareCheckout: summarize(spareSamples),
    backend,
    memorySize,
  };
}

/** µs to make each of `n` fresh sandboxes; their first add(1, 2) goes to `first`. Closing is not timed. */
async function freshLoop(n: number, make: () => Promise<Sandbox>, first: number[]): Promise<Summary> {
  const samples: number[] = [];
  for (let i = -3; i < n; i++) {
    const t0 = now();
    const sb = await make();
    const t1 = now();
    check(sb.callSync("add", 1, 2), 3, "add");
    const t2 = now();
    if (i >= 0) {
      samples.push((t1 - t0) * 1000);
      first.push((t2 - t1) * 1000);
    }
    sb.close();
  }
  return summarize(samples);
}
