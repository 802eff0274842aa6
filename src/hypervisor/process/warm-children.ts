/**
 * Helper children started ahead of need. posix_spawn and the helper's exec are most of a
 * new process-backend sandbox's start (docs/benchmarks.md), so a few children are started
 * while the host is idle. Each waits, before it has any guest memory and before seccomp,
 * on a socket for the two memfds of the sandbox that takes it (native/process/helper.c,
 * receive_memory); from there it starts exactly as a child spawned for that sandbox.
 *
 * Bounded by VMLET_WARM_CHILDREN (default 2; 0 turns them off). The set is filled one child
 * per turn of the event loop, from an unref'd timer, after each take: never on a call's
 * path, and it keeps no process alive. The children die with the thread that started them
 * (PR_SET_PDEATHSIG), as every helper does.
 */
import { InvalidConfigError } from "../../errors/errors.js";
import { loadAddon } from "../../native/addon.js";
import { helperPath } from "./helper-path.js";

export interface WarmChild {
  readonly pidfd: number;
  readonly pid: number;
  /** The host's end of the socket the child waits on. */
  readonly socket: number;
}

const DEFAULT_WARM_CHILDREN = 2;
const MAX_WARM_CHILDREN = 16;

const ready: WarmChild[] = [];
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

/** The oldest warm child, if one is ready; the set is refilled soon after. */
export function takeWarmChild(): WarmChild | undefined {
  const wanted = warmChildCapacity();
  while (ready.length > wanted) discardWarmChild(ready.pop()!);
  const child = ready.shift();
  scheduleRefill(wanted);
  return child;
}

/**
 * Starts a child now when none waits (a process's first sandbox: it execs while the host reads
 * and lays out the guest, instead of after), and the rest of the set soon after.
 */
export function startWarmChildren(): void {
  if (ready.length > 0 || warmChildCapacity() === 0) return;
  if (refillTimer !== undefined) clearTimeout(refillTimer);
  refillOne();
}

/** Kills a warm child that will not be used (or failed its hand-over) and closes its socket. */
export function discardWarmChild(child: WarmChild): void {
  const addon = loadAddon();
  addon.processKill(child.pidfd); // disowns it first: teardown never closes the socket number below
  addon.closeFd(child.socket);
}

function scheduleRefill(wanted: number): void {
  if (refillTimer !== undefined || ready.length >= wanted) return;
  refillTimer = setTimeout(refillOne, 0);
  refillTimer.unref();
}

function refillOne(): void {
  refillTimer = undefined;
  let wanted: number;
  try {
    wanted = warmChildCapacity();
    if (ready.length >= wanted) return;
    const [pidfd, pid, socket] = loadAddon().processSpawnWarm(helperPath());
    ready.push({ pidfd, pid, socket });
  } catch {
    return; // cannot start one now (limits, a bad setting): the next take starts cold and tries again
  }
  scheduleRefill(wanted);
}

/** @internal Tests: the pids of the warm children now waiting. */
export function warmChildPids(): number[] {
  return ready.map((c) => c.pid);
}

/** @internal Tests: kills every warm child now waiting (a refill is not scheduled). */
export function discardWarmChildren(): void {
  if (refillTimer !== undefined) clearTimeout(refillTimer);
  refillTimer = undefined;
  while (ready.length > 0) discardWarmChild(ready.pop()!);
}

/** @internal Tests: resolves once the set holds as many children as VMLET_WARM_CHILDREN asks. */
export async function warmChildrenFilled(): Promise<void> {
  scheduleRefill(warmChildCapacity());
  while (refillTimer !== undefined) await new Promise((resolve) => setTimeout(resolve, 1));
}
