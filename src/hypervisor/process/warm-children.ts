/**
 * Helper children started ahead of need. posix_spawn and the helper's exec are most of a
 * new process-backend sandbox's start (docs/benchmarks.md), so a few children are started
 * while the host is idle. Each waits, before it has any guest memory and before seccomp,
 * on a socket for the two memfds of the sandbox that takes it (native/process/helper.c,
 * receive_memory); from there it starts exactly as a child spawned for that sandbox.
 *
 * The spawns run on a thread of their own (native/process_spawner.c): posix_spawn holds its
 * caller until the child has exec'd, 1–4 ms on a 2-core VM, which on the event loop would
 * stall everything else. A sandbox that finds none ready but one being spawned waits for that
 * one rather than spawning its own.
 *
 * Bounded by VMLET_WARM_CHILDREN (default 2; 0 turns them off). The set is refilled from an
 * unref'd timer after each take: never on a call's path, and it keeps no process alive. The
 * children are killed and reaped when their environment ends (a worker's included), and die
 * with the process (PR_SET_PDEATHSIG), as every helper does.
 */
import { InvalidConfigError } from "../../errors/errors.js";
import { loadAddon, type SpawnTicket } from "../../native/addon.js";
import { helperPath } from "./helper-path.js";

export interface WarmChild {
  readonly pidfd: number;
  readonly pid: number;
  /** The host's end of the socket the child waits on. */
  readonly socket: number;
}

const DEFAULT_WARM_CHILDREN = 2;
const MAX_WARM_CHILDREN = 16;
/**
 * How long a take waits for a child being spawned before the caller spawns its own (ns). One
 * still queued is not waited for: one spawner thread serves every worker of the process, and
 * it may sit behind their spawns.
 */
const ON_ITS_WAY_WAIT_NS = 100_000_000;

const ready: WarmChild[] = [];
/** Spawns queued on the spawner thread, oldest first. */
const starting: SpawnTicket[] = [];
let refillTimer: ReturnType<typeof setTimeout> | undefined;

/** VMLET_WARM_CHILDREN, read at every new sandbox (so it can change at run time); InvalidConfigError if it is not 0–16. */
export function warmChildCapacity(): number {
  const env = process.env.VMLET_WARM_CHILDREN;
  if (env === undefined || env === "") return DEFAULT_WARM_CHILDREN;
  const n = Number(env);
  if (!/^\d+$/.test(env) || n > MAX_WARM_CHILDREN) {
    throw new InvalidConfigError(`VMLET_WARM_CHILDREN must be a whole number from 0 to ${MAX_WARM_CHILDREN} (got ${JSON.stringify(env)})`);
  }
  return n;
}

/** The oldest warm child, if one is ready or on its way; the set is refilled soon after. */
export function takeWarmChild(): WarmChild | undefined {
  const wanted = warmChildCapacity();
  collectSpawned();
  while (ready.length > wanted) discardWarmChild(ready.pop()!);
  const child = ready.shift() ?? waitForOneOnItsWay();
  scheduleRefill(wanted);
  return child;
}

/** Queues a child now when none is ready or on its way (a process's first sandbox: it execs while the host reads and lays out the guest). */
export function startWarmChildren(): void {
  collectSpawned();
  if (ready.length + starting.length > 0 || warmChildCapacity() === 0) return;
  queueSpawns(1);
}

/** Kills a warm child that will not be used (or failed its hand-over) and closes its socket. */
export function discardWarmChild(child: WarmChild): void {
  const addon = loadAddon();
  addon.processKill(child.pidfd); // disowns it first: teardown never closes the socket number below
  addon.closeFd(child.socket);
}

/** Moves finished spawns to `ready`, in order; a failed one is dropped (the next take spawns cold). */
function collectSpawned(): void {
  while (starting.length > 0) {
    const child = take(starting[0]!, 0, false);
    if (child === undefined) return; // the oldest is still on its way
    starting.shift();
    if (child) ready.push(child);
  }
}

function waitForOneOnItsWay(): WarmChild | undefined {
  while (starting.length > 0) {
    const ticket = starting.shift()!;
    const child = take(ticket, ON_ITS_WAY_WAIT_NS, false);
    if (child) return child;
    if (child === undefined) {
      starting.unshift(ticket); // slower than a spawn of our own would be: kept for a later take
      return undefined;
    }
  }
  return undefined;
}

/** The ticket's child (waiting up to `waitNs` while it is spawned, or queued too), undefined while pending, null if its spawn failed. */
function take(ticket: SpawnTicket, waitNs: number, whileQueued: boolean): WarmChild | undefined | null {
  let result: [number, number, number] | undefined | null;
  try {
    result = loadAddon().processSpawnTake(ticket, waitNs, whileQueued);
  } catch {
    return null; // cannot start one now (limits, a missing helper): the take starts cold
  }
  return result ? { pidfd: result[0], pid: result[1], socket: result[2] } : result;
}

function queueSpawns(count: number): void {
  for (let i = 0; i < count; i++) {
    try {
      starting.push(loadAddon().processSpawnWarmLater(helperPath()));
    } catch {
      return; // no spawner thread, no helper: cold starts as before
    }
  }
}

function scheduleRefill(wanted: number): void {
  if (refillTimer !== undefined || ready.length + starting.length >= wanted) return;
  refillTimer = setTimeout(refill, 0);
  refillTimer.unref();
}

function refill(): void {
  refillTimer = undefined;
  try {
    collectSpawned();
    queueSpawns(warmChildCapacity() - ready.length - starting.length);
  } catch {
    // a bad VMLET_WARM_CHILDREN: the next sandbox reports it
  }
}

/** @internal Tests: the pids of the warm children now ready (those on their way are collected first, if done). */
export function warmChildPids(): number[] {
  collectSpawned();
  return ready.map((c) => c.pid);
}

/** @internal Tests: kills every warm child, ready or on its way (a refill is not scheduled). */
export function discardWarmChildren(): void {
  if (refillTimer !== undefined) clearTimeout(refillTimer);
  refillTimer = undefined;
  for (const ticket of starting.splice(0)) {
    const child = take(ticket, 10_000_000_000, true);
    if (child) ready.push(child);
  }
  while (ready.length > 0) discardWarmChild(ready.pop()!);
}

/** @internal Tests: resolves once as many children as VMLET_WARM_CHILDREN asks are ready. */
export async function warmChildrenFilled(): Promise<void> {
  refill();
  for (;;) {
    collectSpawned();
    if (ready.length >= warmChildCapacity() || starting.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
