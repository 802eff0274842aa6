/** What the fuzzers share about running guests: where the fuzz guest is, and how an outcome is named. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { VmletError } from "../src/errors/errors.js";
import type { SandboxBuilder } from "../src/sandbox/builder.js";
import type { Sandbox } from "../src/sandbox/sandbox.js";
import type { Snapshot } from "../src/snapshot/snapshot.js";
import { describeError } from "./harness.js";

/** The repository root: compiled fuzzers live in dist/fuzz. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function fuzzGuestPath(): string {
  return path.join(repoRoot, "guests/build/fuzz.elf");
}

/** The outcome label of a thrown value: its code if typed; anything else is rethrown as the failure it is. */
export function outcomeOf(error: unknown): string {
  if (error instanceof VmletError) return error.code;
  throw error;
}

/** restore() must always work on a sandbox of its own snapshot: even a typed error from it is a failure. */
export class RestoreFailed extends Error {
  constructor(cause: unknown) {
    super(`restore() failed: ${describeError(cause)}`);
  }
}

/**
 * A sandbox and its first snapshot, restored after every input. After a failure it is
 * replaced (the old one may be stuck in a call that never settles; close() kills it).
 */
export class Rig {
  private constructor(
    private readonly builder: SandboxBuilder,
    public sandbox: Sandbox,
    public snapshot: Snapshot,
  ) {}

  static async build(builder: SandboxBuilder): Promise<Rig> {
    const sandbox = await builder.build();
    return new Rig(builder, sandbox, sandbox.snapshot());
  }

  restore(): void {
    try {
      this.sandbox.restore(this.snapshot);
    } catch (error) {
      throw new RestoreFailed(error);
    }
  }

  async replace(): Promise<void> {
    this.sandbox.close();
    this.sandbox = await this.builder.build();
    this.snapshot = this.sandbox.snapshot();
  }

  close(): void {
    this.sandbox.close();
  }
}
