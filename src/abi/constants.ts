/**
 * Guest <-> host ABI constants, wire format version 1. Mirrors guest/include/vmlet_abi.h
 * (test/abi-constants.test.ts checks that the two agree). docs/abi.md explains them.
 */

export const ABI_VERSION = 1;

export const CONTROL_BLOCK_ADDRESS = 0x10000;
export const IMAGE_BASE = 0x100000;

export const PORT_READY = 0x10;
export const PORT_HOST_CALL = 0x11;
export const PORT_LOG = 0x12;
export const PORT_ABORT = 0x13;
/** Ports 0x20..0x3f: CPL-0 fault stubs, port = base + vector. */
export const PORT_FAULT_BASE = 0x20;
export const FAULT_VECTORS = 32;

export const CONTROL_MAGIC = 0x544c4d56; // "VMLT"
export const MESSAGE_MAGIC = 0x4d4c4d56; // "VMLM"

/** Control block byte offsets. */
export const CB = {
  magic: 0x00,
  abiVersion: 0x04,
  inputAddress: 0x08,
  inputSize: 0x10,
  outputSize: 0x14,
  outputAddress: 0x18,
  heapAddress: 0x20,
  heapSize: 0x28,
  maxLogLevel: 0x30,
  fpuXsaveMask: 0x34,
  rngSeed: 0x38,
  rngGeneration: 0x40,
  fnTableAddress: 0x48,
  fnCount: 0x50,
  guestAbi: 0x54,
  heapUsed: 0x58,
  heapPeak: 0x60,
  size: 0x68,
} as const;

/** Message header byte offsets. */
export const MSG = {
  magic: 0,
  version: 4,
  kind: 6,
  length: 8,
  count: 12,
  a: 16,
  b: 20,
  headerSize: 24,
} as const;

export const enum MessageKind {
  Call = 1,
  Return = 2,
  HostCall = 3,
  HostReturn = 4,
  Log = 5,
  Abort = 6,
}

export const enum ReturnStatus {
  Ok = 0,
  UnknownFunction = 1,
  BadArguments = 2,
  Malformed = 3,
  ResultTooLarge = 4,
}

export const enum HostStatus {
  Ok = 0,
  Threw = 1,
  Missing = 2,
  Signature = 3,
  Cancelled = 4,
  /** Guest-side only: the request did not fit the output buffer. */
  TooLarge = 5,
}

export const enum AbortCode {
  Panic = 0,
  OutOfMemory = 1,
  Protocol = 2,
}

export const VALUE_HEADER_SIZE = 8;

/** Value type tags on the wire. */
export const TAG = {
  void: 0,
  i32: 1,
  u32: 2,
  i64: 3,
  u64: 4,
  f32: 5,
  f64: 6,
  bool: 7,
  string: 8,
  bytes: 9,
} as const;

export const MAX_PARAMS = 16;
export const MAX_NAME = 128;

export const FN_ENTRY = { name: 0, params: 8, nParams: 16, ret: 20, wrapper: 24, size: 32 } as const;

/** Guest log levels, most severe first. */
export const LOG_LEVELS = ["off", "error", "warn", "info", "debug", "trace"] as const;
