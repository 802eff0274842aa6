/**
 * Host functions called from the guest (guests/types.c): every type in both
 * directions, registered before or after build, sync and async; and every way a
 * host call fails — missing, throwing, wrong result type, wrong signature,
 * re-entering the sandbox — reaches the guest as a status and the caller as a
 * typed error, without poisoning.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ArgumentMismatchError, BufferTooSmallError, HostFunctionError, HostFunctionMissingError, HostFunctionSignatureError,
  SandboxBusyError, SandboxBuilder, type CallOptions, type GuestValue, type Sandbox,
} from "../src/index.js";
import { guestPath } from "./helpers.js";

/** VMLET_HOST_* statuses the guest sees (guest/include/vmlet_abi.h). */
const HOST_OK = 0;
const HOST_THREW = 1;
const HOST_MISSING = 2;
const HOST_SIGNATURE = 3;

type Invoke = (sb: Sandbox, name: string, ...args: Array<GuestValue | CallOptions>) => Promise<GuestValue | undefined>;
const MODES: ReadonlyArray<readonly [string, Invoke]> = [
  ["callSync", async (sb, name, ...args) => sb.callSync(name, ...args)],
  ["call", (sb, name, ...args) => sb.call(name, ...args)],
];

/** What the guest's host_call_status() reported through report(status, text). */
interface Report {
  status: number;
  text: string;
}

function typesBuilder(): SandboxBuilder {
  return new SandboxBuilder().guest(guestPath("types")).timeoutMs(10_000);
}

/** Records what the echo host functions received; each transforms its value so the test sees the host ran. */
class EchoHosts {
  readonly seen: Array<[string, unknown]> = [];
  readonly defs = {
    h_i32: (x: number) => (this.note("i32", x), x - 1),
    h_u32: (x: number) => (this.note("u32", x), x + 1),
    h_i64: (x: bigint) => (this.note("i64", x), x * 2n),
    h_u64: (x: bigint) => (this.note("u64", x), x + 1n),
    h_f32: (x: number) => (this.note("f32", x), x * 2),
    h_f64: (x: number) => (this.note("f64", x), -x),
    h_bool: (x: boolean) => (this.note("bool", x), !x),
    h_string: (s: string) => (this.note("string", s), `${s.toUpperCase()}!`),
    h_bytes: (b: Uint8Array) => (this.note("bytes", b), b.map((v) => 255 - v)),
    h_void: (x: number) => void this.note("void", x),
    h_mixed: (a: number, s: string, d: number, b: Uint8Array) => `${a}/${s}/${d}/${b.length}`,
  };

  private note(type: string, value: unknown): void {
    this.seen.push([type, value]);
  }

  addTo(builder: SandboxBuilder): SandboxBuilder {
    const d = this.defs;
    return builder
      .hostFunction("h_i32", ["i32"], "i32", d.h_i32)
      .hostFunction("h_u32", ["u32"], "u32", d.h_u32)
      .hostFunction("h_i64", ["i64"], "i64", d.h_i64)
      .hostFunction("h_u64", ["u64"], "u64", d.h_u64)
      .hostFunction("h_f32", ["f32"], "f32", d.h_f32)
      .hostFunction("h_f64", ["f64"], "f64", d.h_f64)
      .hostFunction("h_bool", ["bool"], "bool", d.h_bool)
      .hostFunction("h_string", ["string"], "string", d.h_string)
      .hostFunction("h_bytes", ["bytes"], "bytes", d.h_bytes)
      .hostFunction("h_void", ["i32"], "void", d.h_void)
      .hostFunction("h_mixed", ["i32", "string", "f64", "bytes"], "string", d.h_mixed);
  }

  registerOn(sb: Sandbox): void {
    const d = this.defs;
    sb.registerHostFunction("h_i32", ["i32"], "i32", d.h_i32)
      .registerHostFunction("h_u32", ["u32"], "u32", d.h_u32)
      .registerHostFunction("h_i64", ["i64"], "i64", d.h_i64)
      .registerHostFunction("h_u64", ["u64"], "u64", d.h_u64)
      .registerHostFunction("h_f32", ["f32"], "f32", d.h_f32)
      .registerHostFunction("h_f64", ["f64"], "f64", d.h_f64)
      .registerHostFunction("h_bool", ["bool"], "bool", d.h_bool)
      .registerHostFunction("h_string", ["string"], "string", d.h_string)
      .registerHostFunction("h_bytes", ["bytes"], "bytes", d.h_bytes)
      .registerHostFunction("h_void", ["i32"], "void", d.h_void)
      .registerHostFunction("h_mixed", ["i32", "string", "f64", "bytes"], "string", d.h_mixed);
  }
}

/** Calls every host_echo_* export and checks both what the host got and what the guest returned. */
async function checkEveryType(sb: Sandbox, hosts: EchoHosts, invoke: Invoke): Promise<void> {
  assert.equal(await invoke(sb, "host_echo_i32", -0x7fffffff), -0x80000000);
  assert.equal(await invoke(sb, "host_echo_u32", 0xfffffffe), 0xffffffff);
  assert.equal(await invoke(sb, "host_echo_i64", 2n ** 61n), 2n ** 62n);
  assert.equal(await invoke(sb, "host_echo_u64", 2n ** 64n - 2n), 2n ** 64n - 1n);
  assert.equal(await invoke(sb, "host_echo_f32", 1.25), 2.5);
  assert.equal(await invoke(sb, "host_echo_f64", Math.E), -Math.E);
  assert.equal(await invoke(sb, "host_echo_bool", true), false);
  assert.equal(await invoke(sb, "host_echo_string", "héllo 🌍"), "HÉLLO 🌍!");
  assert.equal(await invoke(sb, "host_echo_string", ""), "!");
  assert.deepEqual(await invoke(sb, "host_echo_bytes", Uint8Array.of(0, 1, 200, 255)), Uint8Array.of(255, 254, 55, 0));
  assert.deepEqual(await invoke(sb, "host_echo_bytes", new Uint8Array(0)), new Uint8Array(0));
  assert.equal(await invoke(sb, "host_void", 77), HOST_OK);
  assert.equal(await invoke(sb, "host_mixed", -3, "abc", 0.5, Uint8Array.of(9, 9)), "-3/abc/0.5/2");
  assert.deepEqual(hosts.seen, [
    ["i32", -0x7fffffff], ["u32", 0xfffffffe], ["i64", 2n ** 61n], ["u64", 2n ** 64n - 2n], ["f32", 1.25], ["f64", Math.E],
    ["bool", true], ["string", "héllo 🌍"], ["string", ""], ["bytes", Uint8Array.of(0, 1, 200, 255)], ["bytes", new Uint8Array(0)],
    ["void", 77],
  ]);
}

/** A sandbox whose guest reports host-call statuses through report(). */
async function reportingSandbox(configure: (b: SandboxBuilder) => SandboxBuilder = (b) => b): Promise<{ sb: Sandbox; reports: Report[] }> {
  const reports: Report[] = [];
  const sb = await configure(typesBuilder())
    .hostFunction("report", ["i32", "string"], "void", (status, text) => void reports.push({ status, text }))
    .build();
  return { sb, reports };
}

/** Asserts a rejection by class and code and returns the error. */
async function rejection<E extends Error>(promise: Promise<unknown>, errorClass: new (...a: never[]) => E, code: string): Promise<E> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof errorClass, `expected ${errorClass.name}, got ${String(caught)}`);
  assert.equal((caught as { code?: string }).code, code);
  return caught as E;
}

for (const [mode, invoke] of MODES) {
  describe(`${mode}: host functions of every type`, () => {
    test("registered on the builder before build", async () => {
      const hosts = new EchoHosts();
      const sb = await hosts.addTo(typesBuilder()).build();
      try {
        await checkEveryType(sb, hosts, invoke);
        assert.ok(sb.hostFunctions.includes("h_mixed(i32, string, f64, bytes) -> string"), sb.hostFunctions.join("; "));
      } finally {
        sb.close();
      }
    });

    test("registered on the sandbox after build", async () => {
      const hosts = new EchoHosts();
      const sb = await typesBuilder().build();
      try {
        await rejection(invoke(sb, "host_echo_i32", 1), HostFunctionMissingError, "HOST_FUNCTION_MISSING");
        hosts.registerOn(sb);
        await checkEveryType(sb, hosts, invoke);
      } finally {
        sb.close();
      }
    });

    test("an i64/u64 host function may return a safe-integer number", async () => {
      const sb = await typesBuilder()
        .hostFunction("h_i64", ["i64"], "i64", () => -12 as unknown as bigint)
        .hostFunction("h_u64", ["u64"], "u64", () => 12 as unknown as bigint)
        .build();
      try {
        assert.equal(await invoke(sb, "host_echo_i64", 0n), -12n);
        assert.equal(await invoke(sb, "host_echo_u64", 0n), 12n);
      } finally {
        sb.close();
      }
    });

    test("a missing host function: the guest sees HOST_MISSING, the caller gets HostFunctionMissingError", async () => {
      const { sb, reports } = await reportingSandbox();
      try {
        const err = await rejection(invoke(sb, "host_call_status", "not_registered"), HostFunctionMissingError, "HOST_FUNCTION_MISSING");
        assert.equal(err.functionName, "not_registered");
        assert.equal(reports.length, 1);
        assert.equal(reports[0]!.status, HOST_MISSING);
        assert.match(reports[0]!.text, /not_registered/);
        assert.equal(sb.poisoned, undefined);
        assert.equal(await invoke(sb, "echo_i32", 3), 3);
      } finally {
        sb.close();
      }
    });

    test("a throwing host function: the guest sees HOST_THREW, the caller gets HostFunctionError with the original cause", async () => {
      const original = new RangeError("kaboom from the host");
      const { sb, reports } = await reportingSandbox((b) =>
        b.hostFunction("explode", [], "void", () => {
          throw original;
        }),
      );
      try {
        const err = await rejection(invoke(sb, "host_call_status", "explode"), HostFunctionError, "HOST_FUNCTION_THREW");
        assert.equal(err.cause, original);
        assert.equal(err.functionName, "explode");
        assert.match(err.message, /kaboom from the host/);
        assert.deepEqual(reports.map((r) => r.status), [HOST_THREW]);
        assert.match(reports[0]!.text, /kaboom from the host/);
        assert.equal(sb.poisoned, undefined);
        assert.equal(await invoke(sb, "echo_i32", 3), 3);
      } finally {
        sb.close();
      }
    });

    test("a host function throwing a non-Error value is still HostFunctionError with that cause", async () => {
      const { sb } = await reportingSandbox((b) =>
        b.hostFunction("explode", [], "void", () => {
          throw "a plain string";
        }),
      );
      try {
        const err = await rejection(invoke(sb, "host_call_status", "explode"), HostFunctionError, "HOST_FUNCTION_THREW");
        assert.equal(err.cause, "a plain string");
      } finally {
        sb.close();
      }
    });

    test("a host result of the wrong JavaScript type is HostFunctionError", async () => {
      const cases: Array<[string, (b: SandboxBuilder) => SandboxBuilder, GuestValue]> = [
        ["host_echo_i32", (b) => b.hostFunction("h_i32", ["i32"], "i32", () => "seven" as unknown as number), 1],
        ["host_echo_i32", (b) => b.hostFunction("h_i32", ["i32"], "i32", () => 2 ** 40), 1],
        ["host_echo_u64", (b) => b.hostFunction("h_u64", ["u64"], "u64", () => -1n), 1n],
        ["host_echo_bool", (b) => b.hostFunction("h_bool", ["bool"], "bool", () => 1 as unknown as boolean), true],
        ["host_echo_string", (b) => b.hostFunction("h_string", ["string"], "string", () => 42 as unknown as string), "x"],
        ["host_echo_string", (b) => b.hostFunction("h_string", ["string"], "string", () => "nul\0inside"), "x"],
        ["host_echo_bytes", (b) => b.hostFunction("h_bytes", ["bytes"], "bytes", () => [1, 2] as unknown as Uint8Array), Uint8Array.of(1)],
      ];
      for (const [fn, configure, arg] of cases) {
        const sb = await configure(typesBuilder()).build();
        try {
          const err = await rejection(invoke(sb, fn, arg), HostFunctionError, "HOST_FUNCTION_THREW");
          assert.ok(err.cause instanceof ArgumentMismatchError, `${fn}: cause ${String(err.cause)}`);
          assert.equal(sb.poisoned, undefined);
        } finally {
          sb.close();
        }
      }
    });

    test("a host result too large for the output buffer is HostFunctionError caused by BufferTooSmallError", async () => {
      const sb = await typesBuilder().hostFunction("h_string", ["string"], "string", () => "y".repeat(100_000)).build();
      try {
        const err = await rejection(invoke(sb, "host_echo_string", "x"), HostFunctionError, "HOST_FUNCTION_THREW");
        assert.ok(err.cause instanceof BufferTooSmallError, String(err.cause));
        assert.equal(sb.poisoned, undefined);
      } finally {
        sb.close();
      }
    });

    test("different parameters than registered: the guest sees HOST_SIGNATURE, the caller gets HostFunctionSignatureError", async () => {
      let ran = false;
      const { sb, reports } = await reportingSandbox((b) => b.hostFunction("takes_i32", ["i32"], "void", () => void (ran = true)));
      try {
        const err = await rejection(invoke(sb, "host_call_status", "takes_i32"), HostFunctionSignatureError, "HOST_FUNCTION_SIGNATURE");
        assert.match(err.message, /takes_i32\(\) -> void but the host registered takes_i32\(i32\) -> void/);
        assert.equal(ran, false, "the host function did not run");
        assert.deepEqual(reports.map((r) => r.status), [HOST_SIGNATURE]);
        assert.equal(sb.poisoned, undefined);
      } finally {
        sb.close();
      }
    });

    test("a different return type than registered is HostFunctionSignatureError", async () => {
      const sb = await typesBuilder().hostFunction("h_i32", ["i32"], "string", () => "not an i32").build();
      try {
        await rejection(invoke(sb, "host_echo_i32", 1), HostFunctionSignatureError, "HOST_FUNCTION_SIGNATURE");
        assert.equal(sb.poisoned, undefined);
      } finally {
        sb.close();
      }
    });

    test("registering again replaces a host function from the next call on", async () => {
      const sb = await typesBuilder().hostFunction("h_i32", ["i32"], "i32", (x) => x + 1).build();
      try {
        assert.equal(await invoke(sb, "host_echo_i32", 1), 2);
        sb.registerHostFunction("h_i32", ["i32"], "i32", (x) => x + 100);
        assert.equal(await invoke(sb, "host_echo_i32", 1), 101);
        sb.registerHostFunction("h_i32", ["i32"], "i32", (x) => x * 3);
        assert.equal(await invoke(sb, "host_echo_i32", 5), 15);
        assert.equal(sb.hostFunctions.filter((s) => s.startsWith("h_i32(")).length, 1);
      } finally {
        sb.close();
      }
    });

    test("calling the sandbox from inside its host function is SandboxBusyError, reported as HostFunctionError", async () => {
      let sb: Sandbox | undefined;
      let inner: unknown;
      sb = await typesBuilder()
        .hostFunction("h_i32", ["i32"], "i32", (x) => {
          try {
            return sb!.callSync("echo_i32", x) as number;
          } catch (error) {
            inner = error;
            throw error;
          }
        })
        .build();
      try {
        const err = await rejection(invoke(sb, "host_echo_i32", 1), HostFunctionError, "HOST_FUNCTION_THREW");
        assert.ok(inner instanceof SandboxBusyError, `inside the host function: ${String(inner)}`);
        assert.equal(err.cause, inner);
        assert.equal(sb.poisoned, undefined);
        assert.equal(await invoke(sb, "echo_i32", 4), 4, "the outer call's state was not disturbed");
      } finally {
        sb.close();
      }
    });
  });
}

describe("async host functions", () => {
  test("call() awaits an async host function of every kind of result", async () => {
    const sb = await typesBuilder()
      .hostFunction("h_i32", ["i32"], "i32", async (x) => {
        await sleep(10);
        return x + 1;
      })
      .hostFunction("h_string", ["string"], "string", async (s) => {
        await sleep(1);
        return `${s} (async)`;
      })
      .hostFunction("h_bytes", ["bytes"], "bytes", (b) => Promise.resolve(b.slice().reverse()))
      .hostFunction("h_void", ["i32"], "void", async () => {
        await sleep(1);
      })
      .build();
    try {
      assert.equal(await sb.call("host_echo_i32", 41), 42);
      assert.equal(await sb.call("host_echo_string", "hi"), "hi (async)");
      assert.deepEqual(await sb.call("host_echo_bytes", Uint8Array.of(1, 2, 3)), Uint8Array.of(3, 2, 1));
      assert.equal(await sb.call("host_void", 0), HOST_OK);
    } finally {
      sb.close();
    }
  });

  test("a rejected promise from an async host function is HostFunctionError with the rejection as cause", async () => {
    const original = new Error("async failure");
    const { sb, reports } = await reportingSandbox((b) =>
      b.hostFunction("explode", [], "void", async () => {
        await sleep(1);
        throw original;
      }),
    );
    try {
      const err = await rejection(sb.call("host_call_status", "explode"), HostFunctionError, "HOST_FUNCTION_THREW");
      assert.equal(err.cause, original);
      assert.deepEqual(reports.map((r) => r.status), [HOST_THREW]);
    } finally {
      sb.close();
    }
  });

  test("callSync() with an async host function: the guest sees HOST_THREW, the caller gets HostFunctionError", async () => {
    let started = 0;
    const { sb, reports } = await reportingSandbox((b) =>
      b.hostFunction("later", [], "void", async () => {
        started++;
        await sleep(1);
      }),
    );
    try {
      let caught: unknown;
      assert.throws(
        () => sb.callSync("host_call_status", "later"),
        (err: unknown) => ((caught = err), true),
      );
      assert.ok(caught instanceof HostFunctionError, String(caught));
      assert.equal(caught.code, "HOST_FUNCTION_THREW");
      assert.ok(caught.cause instanceof TypeError);
      assert.match((caught.cause as Error).message, /returned a Promise; async host functions need call\(\)/);
      assert.equal(started, 1);
      assert.deepEqual(reports.map((r) => r.status), [HOST_THREW]);
      assert.equal(sb.poisoned, undefined);
      assert.equal(await sb.call("host_call_status", "later"), HOST_OK, "the same function works through call()");
    } finally {
      sb.close();
    }
  });

  test("calling the sandbox from inside an async host function is SandboxBusyError, reported as HostFunctionError", async () => {
    let sb: Sandbox | undefined;
    let inner: unknown;
    sb = await typesBuilder()
      .hostFunction("h_i32", ["i32"], "i32", async (x) => {
        try {
          return (await sb!.call("echo_i32", x)) as number;
        } catch (error) {
          inner = error;
          throw error;
        }
      })
      .build();
    try {
      const err = await rejection(sb.call("host_echo_i32", 1), HostFunctionError, "HOST_FUNCTION_THREW");
      assert.ok(inner instanceof SandboxBusyError, String(inner));
      assert.equal(err.cause, inner);
      assert.equal(sb.poisoned, undefined);
    } finally {
      sb.close();
    }
  });
});
