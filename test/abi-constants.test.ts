/**
 * Tripwire: the guest header and the host constants must agree, and the values are
 * pinned. If this fails because you changed the ABI on purpose, read docs/abi.md
 * ("Changing the ABI"), bump ABI_VERSION on both sides, and update the pins here.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as abi from "../src/abi/constants.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const header = readFileSync(path.join(root, "guest/include/vmlet_abi.h"), "utf8");

function defines(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of header.matchAll(/^#define\s+(VMLET_\w+)\s+(0x[0-9a-fA-F]+|\d+)(?:u|ull)?\b/gm)) {
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const h = defines();
const value = (name: string): number => {
  const v = h.get(name);
  assert.notEqual(v, undefined, `${name} missing from vmlet_abi.h`);
  return v!;
};

test("guest header and host agree on versions, addresses and ports", () => {
  assert.equal(value("VMLET_ABI_VERSION"), abi.ABI_VERSION);
  assert.equal(value("VMLET_CONTROL_BLOCK_ADDR"), abi.CONTROL_BLOCK_ADDRESS);
  assert.equal(value("VMLET_IMAGE_BASE"), abi.IMAGE_BASE);
  assert.equal(value("VMLET_PORT_READY"), abi.PORT_READY);
  assert.equal(value("VMLET_PORT_HOST_CALL"), abi.PORT_HOST_CALL);
  assert.equal(value("VMLET_PORT_LOG"), abi.PORT_LOG);
  assert.equal(value("VMLET_PORT_ABORT"), abi.PORT_ABORT);
  assert.equal(value("VMLET_PORT_FAULT_BASE"), abi.PORT_FAULT_BASE);
  assert.equal(value("VMLET_CONTROL_MAGIC"), abi.CONTROL_MAGIC);
  assert.equal(value("VMLET_MESSAGE_MAGIC"), abi.MESSAGE_MAGIC);
});

test("guest header and host agree on the control block layout", () => {
  const pairs: Array<[string, number]> = [
    ["VMLET_CB_MAGIC", abi.CB.magic], ["VMLET_CB_ABI_VERSION", abi.CB.abiVersion],
    ["VMLET_CB_INPUT_ADDR", abi.CB.inputAddress], ["VMLET_CB_INPUT_SIZE", abi.CB.inputSize],
    ["VMLET_CB_OUTPUT_SIZE", abi.CB.outputSize], ["VMLET_CB_OUTPUT_ADDR", abi.CB.outputAddress],
    ["VMLET_CB_HEAP_ADDR", abi.CB.heapAddress], ["VMLET_CB_HEAP_SIZE", abi.CB.heapSize],
    ["VMLET_CB_MAX_LOG_LEVEL", abi.CB.maxLogLevel], ["VMLET_CB_RNG_SEED", abi.CB.rngSeed],
    ["VMLET_CB_RNG_GENERATION", abi.CB.rngGeneration], ["VMLET_CB_FN_TABLE_ADDR", abi.CB.fnTableAddress],
    ["VMLET_CB_FN_COUNT", abi.CB.fnCount], ["VMLET_CB_GUEST_ABI", abi.CB.guestAbi],
    ["VMLET_CB_HEAP_USED", abi.CB.heapUsed], ["VMLET_CB_HEAP_PEAK", abi.CB.heapPeak], ["VMLET_CB_SIZE", abi.CB.size],
  ];
  for (const [name, host] of pairs) assert.equal(value(name), host, name);
});

test("guest header and host agree on messages, kinds, statuses and type tags", () => {
  const pairs: Array<[string, number]> = [
    ["VMLET_MSG_MAGIC", abi.MSG.magic], ["VMLET_MSG_VERSION", abi.MSG.version], ["VMLET_MSG_KIND", abi.MSG.kind],
    ["VMLET_MSG_LENGTH", abi.MSG.length], ["VMLET_MSG_COUNT", abi.MSG.count], ["VMLET_MSG_A", abi.MSG.a],
    ["VMLET_MSG_B", abi.MSG.b], ["VMLET_MSG_HEADER_SIZE", abi.MSG.headerSize],
    ["VMLET_MSG_CALL", abi.MessageKind.Call], ["VMLET_MSG_RETURN", abi.MessageKind.Return],
    ["VMLET_MSG_HOST_CALL", abi.MessageKind.HostCall], ["VMLET_MSG_HOST_RETURN", abi.MessageKind.HostReturn],
    ["VMLET_MSG_LOG", abi.MessageKind.Log], ["VMLET_MSG_ABORT", abi.MessageKind.Abort],
    ["VMLET_STATUS_OK", abi.ReturnStatus.Ok], ["VMLET_STATUS_UNKNOWN_FUNCTION", abi.ReturnStatus.UnknownFunction],
    ["VMLET_STATUS_BAD_ARGUMENTS", abi.ReturnStatus.BadArguments], ["VMLET_STATUS_MALFORMED", abi.ReturnStatus.Malformed],
    ["VMLET_STATUS_RESULT_TOO_LARGE", abi.ReturnStatus.ResultTooLarge],
    ["VMLET_HOST_OK", abi.HostStatus.Ok], ["VMLET_HOST_THREW", abi.HostStatus.Threw], ["VMLET_HOST_MISSING", abi.HostStatus.Missing],
    ["VMLET_HOST_SIGNATURE", abi.HostStatus.Signature], ["VMLET_HOST_CANCELLED", abi.HostStatus.Cancelled],
    ["VMLET_HOST_TOO_LARGE", abi.HostStatus.TooLarge],
    ["VMLET_ABORT_PANIC", abi.AbortCode.Panic], ["VMLET_ABORT_OUT_OF_MEMORY", abi.AbortCode.OutOfMemory],
    ["VMLET_ABORT_PROTOCOL", abi.AbortCode.Protocol], ["VMLET_VALUE_HEADER_SIZE", abi.VALUE_HEADER_SIZE],
    ["VMLET_MAX_PARAMS", abi.MAX_PARAMS], ["VMLET_MAX_NAME", abi.MAX_NAME],
    ["VMLET_FN_ENTRY_NAME", abi.FN_ENTRY.name], ["VMLET_FN_ENTRY_PARAMS", abi.FN_ENTRY.params],
    ["VMLET_FN_ENTRY_NPARAMS", abi.FN_ENTRY.nParams], ["VMLET_FN_ENTRY_RET", abi.FN_ENTRY.ret],
    ["VMLET_FN_ENTRY_WRAPPER", abi.FN_ENTRY.wrapper], ["VMLET_FN_ENTRY_SIZE", abi.FN_ENTRY.size],
  ];
  for (const [name, host] of pairs) assert.equal(value(name), host, name);
  for (const [type, tag] of Object.entries(abi.TAG)) assert.equal(value(`VMLET_T_${type.toUpperCase()}`), tag, type);
  abi.LOG_LEVELS.slice(1).forEach((level, i) => assert.equal(value(`VMLET_LOG_${level.toUpperCase()}`), i + 1, level));
});

test("ABI version 1 constants are pinned (read docs/abi.md before changing any)", () => {
  assert.deepEqual(
    {
      version: abi.ABI_VERSION, controlBlock: abi.CONTROL_BLOCK_ADDRESS, imageBase: abi.IMAGE_BASE,
      ports: [abi.PORT_READY, abi.PORT_HOST_CALL, abi.PORT_LOG, abi.PORT_ABORT, abi.PORT_FAULT_BASE],
      magics: [abi.CONTROL_MAGIC, abi.MESSAGE_MAGIC], header: abi.MSG.headerSize, controlBlockSize: abi.CB.size,
      tags: abi.TAG,
    },
    {
      version: 1, controlBlock: 0x10000, imageBase: 0x100000,
      ports: [0x10, 0x11, 0x12, 0x13, 0x20],
      magics: [0x544c4d56, 0x4d4c4d56], header: 24, controlBlockSize: 0x68,
      tags: { void: 0, i32: 1, u32: 2, i64: 3, u64: 4, f32: 5, f64: 6, bool: 7, string: 8, bytes: 9 },
    },
  );
});
