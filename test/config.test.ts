/** The config of a sandbox built from a guest binary: every field is checked, none is ignored. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSandbox, InvalidConfigError, SandboxBuilder, type SandboxConfig } from "../src/index.js";
import { guestPath } from "./helpers.js";

test("createSandbox builds from a config object like the builder does", async () => {
  const sb = await createSandbox({
    guest: guestPath("demo"),
    heapSize: 1 << 20,
    maxGuestLogLevel: "warn",
    hostFunctions: [{ name: "ping", params: [], returns: "void", impl: () => undefined }],
  });
  try {
    assert.equal(sb.callSync("add", 2, 40), 42);
    assert.equal(sb.callSync("call_ping"), 0);
    assert.equal(sb.maxGuestLogLevel, "warn");
  } finally {
    sb.close();
  }
});

test("fields that belong to other configs or do not exist are rejected, not ignored", async () => {
  for (const field of ["snapshot", "memorySize", "heapsize", "logLevel"]) {
    const config = { guest: guestPath("demo"), [field]: 1 } as unknown as SandboxConfig;
    await assert.rejects(createSandbox(config), (e: unknown) => e instanceof InvalidConfigError && e.message.includes(`"${field}"`), field);
  }
});

test("out-of-range sizes, levels and timeouts name the option", async () => {
  const cases: Array<[Partial<SandboxConfig>, string]> = [
    [{ heapSize: 100 }, "heapSize"],
    [{ stackSize: 2 ** 40 }, "stackSize"],
    [{ inputSize: 1.5 }, "inputSize"],
    [{ maxGuestLogLevel: "loud" as never }, "maxGuestLogLevel"],
    [{ timeoutMs: -1 }, "timeoutMs"],
    [{ initTimeoutMs: 0 }, "initTimeoutMs"],
    [{ guestLogger: "stderr" as never }, "guestLogger"],
  ];
  for (const [extra, option] of cases) {
    await assert.rejects(createSandbox({ guest: guestPath("demo"), ...extra }), (e: unknown) => e instanceof InvalidConfigError && e.message.includes(option), option);
  }
  await assert.rejects(new SandboxBuilder().build(), InvalidConfigError, "a guest is required");
});

test("unknown call options are rejected", async () => {
  const sb = await new SandboxBuilder().guest(guestPath("demo")).build();
  try {
    assert.throws(() => sb.callSync("add", 1, 2, { timeout: 5 } as never), InvalidConfigError);
    assert.equal(sb.callSync("add", 1, 2, { timeoutMs: 1000 }), 3);
    assert.equal(sb.poisoned, undefined);
  } finally {
    sb.close();
  }
});

test("an abort from inside a host function cancels a callSync", async () => {
  const controller = new AbortController();
  const sb = await new SandboxBuilder()
    .guest(guestPath("demo"))
    .hostFunction("ping", [], "void", () => controller.abort())
    .build();
  try {
    assert.throws(() => sb.callSync("call_ping", { signal: controller.signal }), (e: unknown) => (e as { code?: string }).code === "CANCELLED");
  } finally {
    sb.close();
  }
});
