/**
 * The GDB remote stub (sb.debug()), driven by real gdb (guests/debuggee.c): a breakpoint on
 * a guest function, continue, print an argument, step, finish, a backtrace, detach — and
 * the call completes with its result; a guest that faults while gdb is attached stops
 * where it faulted, and the call fails with the fault once gdb lets go; Ctrl-C stops a
 * spinning guest, and gdb can change its memory so that it returns. Runs on every backend.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { test } from "node:test";
import { GuestFaultError, SandboxBuilder, type HostFunctionDefinition } from "../src/index.js";
import { guestPath } from "./helpers.js";
import fs from "node:fs";
import { readSymbols } from "../src/mem/elf.js";

const hasGdb = spawnSync("gdb", ["--version"]).status === 0;
const needsGdb = hasGdb ? {} : { skip: "gdb is not installed (scripts/install-system-deps.sh installs it)" };
const addOne = { name: "host_add_one", params: ["i32"], returns: "i32", impl: (x: number) => x + 1 } as unknown as HostFunctionDefinition;
const debuggee = () => new SandboxBuilder().guest(guestPath("debuggee")).hostFunction(addOne.name, addOne.params, addOne.returns, addOne.impl as never).build();

/** Starts gdb -batch on the guest ELF against the stub; resolves with everything it printed. */
function runGdb(port: number, commands: string[]): Promise<string> {
  const args = ["-batch", "-nx", "-ex", `target remote 127.0.0.1:${port}`, ...commands.flatMap((c) => ["-ex", c]), guestPath("debuggee")];
  const gdb = spawn("gdb", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  gdb.stdout.on("data", (d: Buffer) => (out += d.toString()));
  gdb.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => gdb.kill("SIGKILL"), 60_000);
  return new Promise((resolve) => gdb.on("exit", () => {
    clearTimeout(timer);
    resolve(out);
  }));
}

test("break on a guest function, continue, print, step, finish, backtrace, detach: the call completes", needsGdb, async () => {
  const sb = await debuggee();
  const session = await sb.debug();
  try {
    const gdb = runGdb(session.port, ["break square", "continue", "print x", "next", "print result", "finish", "bt", "delete", "detach"]);
    await session.whenResumed();
    const result = await sb.call("sum_squares", 4);
    const out = await gdb;
    assert.equal(result, 14, "0 + 1 + 4 + 9: the guest ran on after the debugger detached");
    assert.match(out, /Breakpoint 1, square \(x=0\) at debuggee\.c:\d+/);
    assert.match(out, /^\$1 = 0$/m);
    assert.match(out, /^\$2 = 0$/m, "next ran the multiplication");
    assert.match(out, /Run till exit|Value returned is \$3 = 0/);
    assert.match(out, /#0 .* sum_squares \(n=4\) at debuggee\.c:\d+/);
    assert.match(out, /detached/);
  } finally {
    await session.close();
    sb.close();
  }
});

test("a guest that faults with gdb attached stops where it faulted; the call then fails with the fault", needsGdb, async () => {
  const sb = await debuggee();
  const session = await sb.debug();
  try {
    const gdb = runGdb(session.port, ["continue", "bt 3", "print marker", "detach"]);
    await session.whenResumed();
    await assert.rejects(sb.call("crash_deep", 3), GuestFaultError);
    const out = await gdb;
    assert.match(out, /Program received signal SIGSEGV/);
    assert.match(out, /leaf_write \(depth=6, target=0x0\) at debuggee\.c:\d+/);
    assert.match(out, /^\$1 = 42$/m);
  } finally {
    await session.close();
    sb.close();
  }
});

test("Ctrl-C stops a spinning guest; a memory write lets it finish; callSync is refused while attached", async () => {
  const sb = await debuggee();
  const session = await sb.debug();
  const socket = net.connect(session.port, "127.0.0.1");
  let received = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => (received += d));
  const send = (data: string): void => {
    let sum = 0;
    for (const c of data) sum = (sum + c.charCodeAt(0)) & 0xff;
    socket.write(`$${data}#${sum.toString(16).padStart(2, "0")}`);
  };
  const waitFor = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (let i = 0; i < 500; i++) {
      const m = received.match(pattern);
      if (m) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${pattern} in ${JSON.stringify(received)}`);
  };
  try {
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    assert.throws(() => sb.callSync("ok"), { code: "SANDBOX_BUSY" });
    send("c");
    const call = sb.call("spin");
    await new Promise((r) => setTimeout(r, 50));
    socket.write("\x03");
    await waitFor(/\$T02/);
    received = "";
    send("g");
    const regs = await waitFor(/\$([0-9a-f]{64,})#/);
    const rip = Buffer.from(regs[1]!.slice(16 * 16, 16 * 16 + 16), "hex").readBigUInt64LE();
    assert.ok(rip >= 0x100000n, `stopped in guest code (rip 0x${rip.toString(16)})`);
    // What gdb's `set var stop = 1` does: a memory write at the variable's address, then continue.
    const stop = readSymbols(fs.readFileSync(guestPath("debuggee"))).find((sym) => sym.name === "stop")!;
    received = "";
    send(`M${stop.value.toString(16)},4:01000000`);
    await waitFor(/\$OK/);
    send("c");
    const laps = await call;
    assert.ok(typeof laps === "number" && laps > 0, `the guest saw the write and returned after ${String(laps)} laps`);
    send("D");
    await waitFor(/\$OK/);
  } finally {
    socket.destroy();
    await session.close();
    sb.close();
  }
});

test("the port comes from the option or VMLET_GDB_PORT; a bad or taken port is INVALID_CONFIG", async () => {
  const sb = await debuggee();
  const other = await debuggee();
  try {
    await assert.rejects(sb.debug({ port: 70000 }), { code: "INVALID_CONFIG" });
    const first = await sb.debug();
    process.env.VMLET_GDB_PORT = String(first.port);
    try {
      await assert.rejects(other.debug(), { code: "INVALID_CONFIG" }, "the port is taken by the first server");
    } finally {
      delete process.env.VMLET_GDB_PORT;
    }
    await first.close();
    const second = await sb.debug({ port: first.port });
    assert.equal(second.port, first.port);
    await second.close();
  } finally {
    sb.close();
    other.close();
  }
});
