/** What a long run must not leak, read from /proc: resident memory, open fds, threads, child processes. */
import fs from "node:fs";

export interface ProcessStats {
  readonly rssMiB: number;
  readonly fds: number;
  readonly threads: number;
  /** Live child processes (the process backend runs one per VM). */
  readonly children: number;
  /** Children that exited and were never reaped. */
  readonly zombies: number;
  /** The JavaScript heap in use (part of rss; shown to tell a JS leak from a native one). */
  readonly heapMiB: number;
}

export function processStats(): ProcessStats {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const field = (name: string): number => Number(/^(\w+):\s+(\d+)/m.exec(status.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "")?.[2] ?? NaN);
  const { children, zombies } = childProcesses();
  const heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  return { rssMiB: field("VmRSS") / 1024, fds: fs.readdirSync("/proc/self/fd").length, threads: field("Threads"), children, zombies, heapMiB };
}

/** Scans /proc for processes whose parent is this one. */
function childProcesses(): { children: number; zombies: number } {
  let children = 0;
  let zombies = 0;
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone since the listing
    }
    // pid (comm) state ppid ...: comm may contain spaces and parentheses, so parse after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(ppid) !== process.pid) continue;
    if (state === "Z") zombies++;
    else children++;
  }
  return { children, zombies };
}

export function formatStats(s: ProcessStats): string {
  return `rss ${s.rssMiB.toFixed(1)} MiB (JS heap ${s.heapMiB.toFixed(1)}), fds ${s.fds}, threads ${s.threads}, children ${s.children}, zombies ${s.zombies}`;
}
