/**
 * Guest logging (guests/types.c log_each_level): records at or below the maximum
 * level reach the guestLogger with level, message, file and line; more verbose
 * ones are filtered inside the guest; the level can change at run time; the
 * default logger writes to stderr.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidConfigError, SandboxBuilder, type GuestLogRecord, type LogLevel, type Sandbox,
} from "../src/index.js";
import { guestPath } from "./helpers.js";

const LEVELS = ["error", "warn", "info", "debug", "trace"] as const;

async function logged(level: LogLevel | undefined): Promise<{ sb: Sandbox; records: GuestLogRecord[] }> {
  const records: GuestLogRecord[] = [];
  let builder = new SandboxBuilder().guest(guestPath("types")).guestLogger((r) => void records.push(r));
  if (level !== undefined) builder = builder.maxGuestLogLevel(level);
  return { sb: await builder.build(), records };
}

/** The records log_each_level(tag) sends when the first `n` levels are enabled. */
function expected(tag: string, firstLine: number, n: number): GuestLogRecord[] {
  return LEVELS.slice(0, n).map((level, i) => ({ level, message: `${level} ${tag}`, file: "types.c", line: firstLine + i }));
}

describe("guest log records", () => {
  test("records at or below maxGuestLogLevel arrive with level, message, file and line", async () => {
    const { sb, records } = await logged("debug");
    try {
      const first = sb.callSync("log_each_level", "sync") as number;
      assert.ok(first > 0);
      assert.deepEqual(records, expected("sync", first, 4));
    } finally {
      sb.close();
    }
  });

  test("records arrive the same way during an async call", async () => {
    const { sb, records } = await logged("trace");
    try {
      const first = (await sb.call("log_each_level", "async")) as number;
      assert.deepEqual(records, expected("async", first, 5));
    } finally {
      sb.close();
    }
  });

  test("the default maximum level is info", async () => {
    const { sb, records } = await logged(undefined);
    try {
      assert.equal(sb.maxGuestLogLevel, "info");
      const first = sb.callSync("log_each_level", "default") as number;
      assert.deepEqual(records, expected("default", first, 3));
    } finally {
      sb.close();
    }
  });

  test("each maximum level delivers exactly the records at or below it", async () => {
    for (const [n, level] of (["off", ...LEVELS] as const).entries()) {
      const { sb, records } = await logged(level);
      try {
        const first = sb.callSync("log_each_level", level) as number;
        assert.equal(records.length, n, `${level}: ${records.map((r) => r.level).join(", ")}`);
        assert.deepEqual(records, expected(level, first, n));
      } finally {
        sb.close();
      }
    }
  });

  test("records above the level are filtered in the guest: it knows they are disabled", async () => {
    const { sb } = await logged("warn");
    try {
      assert.deepEqual([1, 2, 3, 4, 5].map((l) => sb.callSync("log_enabled", l)), [true, true, false, false, false]);
      sb.setMaxGuestLogLevel("off");
      assert.deepEqual([1, 2, 3, 4, 5].map((l) => sb.callSync("log_enabled", l)), [false, false, false, false, false]);
    } finally {
      sb.close();
    }
  });

  test("setMaxGuestLogLevel changes what the next call delivers", async () => {
    const { sb, records } = await logged("error");
    try {
      const counts: Record<string, number> = {};
      for (const level of ["error", "trace", "info", "off", "warn"] as const) {
        sb.setMaxGuestLogLevel(level);
        assert.equal(sb.maxGuestLogLevel, level);
        records.length = 0;
        sb.callSync("log_each_level", level);
        counts[level] = records.length;
      }
      assert.deepEqual(counts, { error: 1, trace: 5, info: 3, off: 0, warn: 2 });
    } finally {
      sb.close();
    }
  });

  test("setMaxGuestLogLevel from a host function takes effect within the same call", async () => {
    const records: GuestLogRecord[] = [];
    let sb: Sandbox | undefined;
    sb = await new SandboxBuilder()
      .guest(guestPath("types"))
      .maxGuestLogLevel("off")
      .guestLogger((r) => void records.push(r))
      .hostFunction("h_void", ["i32"], "void", () => sb!.setMaxGuestLogLevel("trace"))
      .build();
    try {
      sb.callSync("log_each_level", "before");
      assert.equal(records.length, 0);
      sb.callSync("host_void", 0);
      sb.callSync("log_each_level", "after");
      assert.equal(records.length, 5);
    } finally {
      sb.close();
    }
  });

  test("a guestLogger that throws, even a value that cannot be printed, only warns: the call goes on", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on("warning", onWarning);
    const sb = await new SandboxBuilder()
      .guest(guestPath("types"))
      .maxGuestLogLevel("trace")
      .guestLogger(() => {
        throw Object.create(null) as unknown; // no toString: String() of it throws
      })
      .build();
    try {
      sb.callSync("log_each_level", "x");
      assert.equal(sb.poisoned, undefined);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.ok(warnings.some((w) => /guest logger threw: a value that cannot be printed \(object\)/.test(w)), warnings.join("; "));
    } finally {
      process.off("warning", onWarning);
      sb.close();
    }
  });

  test("a message longer than the output buffer arrives truncated, not as an error", async () => {
    const { sb, records } = await logged("info");
    try {
      sb.callSync("log_long", 200);
      sb.callSync("log_long", 200_000); // far beyond the 64 KiB output buffer
      assert.equal(records.length, 2);
      assert.equal(records[0]!.message, "y".repeat(200));
      const long = records[1]!.message;
      assert.ok(long.length > 60_000 && long.length < 64 << 10, `truncated to ${long.length} characters`);
      assert.ok(/^y+$/.test(long));
      assert.equal(records[1]!.file, "types.c");
      assert.equal(sb.poisoned, undefined);
    } finally {
      sb.close();
    }
  });

  test("'off' delivers nothing at all", async () => {
    const { sb, records } = await logged("off");
    try {
      sb.callSync("log_each_level", "silent");
      await sb.call("log_each_level", "silent");
      assert.deepEqual(records, []);
    } finally {
      sb.close();
    }
  });

  test("an unknown level is InvalidConfigError, on the builder and at run time", async () => {
    await assert.rejects(
      new SandboxBuilder().guest(guestPath("types")).maxGuestLogLevel("verbose" as LogLevel).build(),
      InvalidConfigError,
    );
    const { sb } = await logged("info");
    try {
      assert.throws(() => sb.setMaxGuestLogLevel("loud" as LogLevel), InvalidConfigError);
      assert.equal(sb.maxGuestLogLevel, "info");
    } finally {
      sb.close();
    }
  });

  test("without a guestLogger, records go to stderr as [guest <level>] message (file:line)", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("types")).maxGuestLogLevel("warn").build();
    const written: string[] = [];
    const original = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
      return true;
    }) as typeof process.stderr.write;
    let first: number;
    try {
      first = sb.callSync("log_each_level", "to stderr") as number;
    } finally {
      process.stderr.write = original;
      sb.close();
    }
    assert.deepEqual(written, [
      `[guest error] error to stderr (types.c:${first})\n`,
      `[guest warn] warn to stderr (types.c:${first + 1})\n`,
    ]);
  });
});
