/**
 * zstd in a vmlet sandbox (examples/zstd-guest/): a thin typed wrapper around the guest's
 * `compress(data, level)` and `decompress(data, maxSize)` exports. Bad input (not zstd,
 * cut off, corrupt, or decoding to more than `maxSize`) throws a ZstdError with zstd's own
 * error code and name; the sandbox stays usable.
 *
 *   const zstd = await ZstdSandbox.open();
 *   const frame = zstd.compress(data, 19);
 *   const back = zstd.decompress(frame);             // equal to data
 *
 * In your own code, import from "vmlet" instead of ../../src.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Sandbox, SandboxBuilder } from "../../src/index.js";

/** The repository root: this file runs from dist/examples/zstd-guest/. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const zstdGuest = path.join(root, "examples/zstd-guest/build/zstd.elf");

/** What zstd said about bad input: `zstdCode` is its ZSTD_ErrorCode, the message its name for it. */
export class ZstdError extends Error {
  readonly code = "ZSTD_ERROR";
  constructor(
    message: string,
    readonly zstdCode: number,
  ) {
    super(message);
    this.name = "ZstdError";
  }
}

export interface ZstdSandboxOptions {
  /** Largest input of one call, bytes (the sandbox's input buffer). Default 8 MiB. */
  maxInput?: number;
  /** Largest result of decompress(), bytes. Default 8 MiB. (The output buffer also holds the largest frame of maxInput bytes.) */
  maxOutput?: number;
  /** The guest heap: zstd's contexts (up to about 100 MiB at level 19–22 on large inputs) and the result. Default 256 MiB. */
  heapSize?: number;
}

/** Room in the buffers for the message around the bytes and the result's status byte. */
const ENVELOPE = 4096;
const STATUS_OK = 0;

/** The largest frame of n bytes (ZSTD_compressBound), so incompressible input fits too. */
const frameBound = (n: number): number => n + Math.floor(n / 256) + (128 << 10);

/** Splits a guest result into its bytes or throws its zstd error. */
function unwrap(result: Uint8Array): Uint8Array {
  if (result[0] === STATUS_OK) return result.subarray(1);
  const view = new DataView(result.buffer, result.byteOffset, result.byteLength);
  throw new ZstdError(Buffer.from(result.subarray(5)).toString("utf8"), view.getUint32(1, true));
}

export class ZstdSandbox {
  private constructor(
    readonly sandbox: Sandbox,
    /** The default and the largest `maxSize` of decompress(). */
    readonly maxOutput: number,
  ) {}

  static async open(options: ZstdSandboxOptions = {}): Promise<ZstdSandbox> {
    const maxInput = options.maxInput ?? 8 << 20;
    const maxOutput = options.maxOutput ?? 8 << 20;
    const sandbox = await new SandboxBuilder()
      .guest(zstdGuest)
      .heapSize(options.heapSize ?? 256 << 20)
      .inputSize(maxInput + ENVELOPE)
      .outputSize(Math.max(maxOutput, frameBound(maxInput)) + ENVELOPE)
      .build();
    return new ZstdSandbox(sandbox, maxOutput);
  }

  /** Wraps a sandbox made from a snapshot of a ZstdSandbox. */
  static wrap(sandbox: Sandbox, maxOutput = 8 << 20): ZstdSandbox {
    return new ZstdSandbox(sandbox, maxOutput);
  }

  /** One zstd frame of `data` (levels as zstd has them: 1–22, negative for faster, 0 = default 3). */
  compress(data: Uint8Array, level = 3): Uint8Array {
    return unwrap(this.sandbox.callSync("compress", data, level) as Uint8Array);
  }

  /** What the zstd frames in `data` decode to, at most `maxSize` bytes. */
  decompress(data: Uint8Array, maxSize = this.maxOutput): Uint8Array {
    if (!Number.isInteger(maxSize) || maxSize < 0 || maxSize > this.maxOutput) throw new RangeError(`maxSize must be an integer from 0 to ${this.maxOutput}`);
    return unwrap(this.sandbox.callSync("decompress", data, maxSize) as Uint8Array);
  }

  /** The zstd version the guest was built from. */
  version(): string {
    return this.sandbox.callSync("version") as string;
  }

  close(): void {
    this.sandbox.close();
  }
}
