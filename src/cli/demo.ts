/** `vmlet demo`: builds the demo guest, calls each kind of function, catches a fault, prints latencies. */
import { SandboxBuilder } from "../sandbox/builder.js";
import { VmletError } from "../errors/errors.js";
import type { BackendInfo } from "../hypervisor/virtual-machine.js";
import { escapeControlChars } from "../sandbox/terminal-text.js";
import { expectPositionals, parseArgs } from "./args.js";
import type { Io } from "./io.js";
import { guestPath } from "./paths.js";
import { timeAsync, timeSync } from "./stats.js";

export const DEMO_USAGE = `usage: vmlet demo
  Builds sandboxes from the demo guest that ships with vmlet (guests/demo.c), calls each
  kind of function, catches a guest fault and a timeout, and prints call latencies.`;

export async function demoCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { options: {} }, DEMO_USAGE);
  if (args.help) {
    io.out(DEMO_USAGE);
    return 0;
  }
  expectPositionals(args, [], DEMO_USAGE);
  await demo((line) => io.out(line));
  return 0;
}

function describeBackend(backend: BackendInfo): string {
  if (backend.name === "process") return "a seccomp-confined child process: no usable KVM here, weaker isolation than a VM (docs/backends.md)";
  return backend.flavour === "pvm" ? "PVM, software-virtualised KVM for nested hosts" : "hardware virtualisation";
}

export async function demo(print: (line: string) => void): Promise<void> {
  const lines: string[] = [];
  const started = performance.now();
  const sb = await new SandboxBuilder()
    .guest(guestPath("demo"))
    .hostFunction("log_line", ["string"], "void", (s) => void lines.push(s))
    .guestLogger((r) => print(`  guest log [${r.level}] ${escapeControlChars(r.message)} (${escapeControlChars(r.file)}:${r.line})`))
    .heapSize(2 << 20)
    .build();
  const buildMs = performance.now() - started;
  print(`vmlet demo — backend: ${sb.backend.name} (${describeBackend(sb.backend)})`);
  print(`sandbox built in ${buildMs.toFixed(2)} ms, guest memory ${(sb.memorySize / 2 ** 20).toFixed(0)} MiB`);
  print(`guest exports: ${sb.functions.join("; ")}`);
  print("");
  print(`add(2, 40)                  = ${String(await sb.call("add", 2, 40))}`);
  print(`echo("hi")                  = ${JSON.stringify(sb.callSync("echo", "hi"))}`);
  print(`mean(1, 2, 4)               = ${String(sb.callSync("mean", 1, 2, 4))}`);
  print(`count_byte([1,2,1,1], 1)    = ${String(sb.callSync("count_byte", new Uint8Array([1, 2, 1, 1]), 1))}`);
  print(`repeat("ab", 3)             = ${JSON.stringify(sb.callSync("repeat", "ab", 3))}`);
  print(`greet("reader", 2)          = ${String(await sb.call("greet", "reader", 2))}  (host callback log_line got: ${JSON.stringify(lines)})`);
  sb.registerHostFunction("now_ms", [], "f64", () => Date.now());
  print("");
  const faulty = await new SandboxBuilder().guest(guestPath("demo")).build();
  try {
    faulty.callSync("read_address", 0n);
  } catch (error) {
    if (!(error instanceof VmletError)) throw error;
    print(`read_address(0) in a second sandbox → ${error.name} [${error.code}]: ${error.message}`);
    print(`  that sandbox is now poisoned; the first still works: add(1, 1) = ${String(sb.callSync("add", 1, 1))}`);
  }
  faulty.close();
  const spinner = await new SandboxBuilder().guest(guestPath("demo")).build();
  const t0 = performance.now();
  await spinner.call("spin_forever", { timeoutMs: 50 }).catch((error: VmletError) => {
    print(`spin_forever with timeoutMs 50 → ${error.code} after ${(performance.now() - t0).toFixed(1)} ms`);
  });
  spinner.close();
  print("");
  sb.setMaxGuestLogLevel("warn"); // info records are now filtered inside the guest: no exits
  sb.registerHostFunction("ping", [], "void", () => undefined);
  print("call latency (median, µs):");
  print(`  callSync("noop")          ${timeSync(() => sb.callSync("noop"), 3000).toFixed(1)}`);
  print(`  await call("noop")        ${(await timeAsync(() => sb.call("noop"), 2000)).toFixed(1)}`);
  print(`  callSync("add", 2, 40)    ${timeSync(() => sb.callSync("add", 2, 40), 3000).toFixed(1)}`);
  print(`  callSync("echo", 1 KiB)   ${timeSync(() => sb.callSync("echo", "x".repeat(1024)), 2000).toFixed(1)}`);
  print(`  callSync("call_ping")     ${timeSync(() => sb.callSync("call_ping"), 2000).toFixed(1)}  (a call that makes one guest→host call)`);
  sb.close();
}
