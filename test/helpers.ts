/** Shared test helpers: guest paths, timing, typed rejections. */
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { VmletError } from "../src/errors/errors.js";

/** The repository root: compiled tests live in dist/test, two levels below it. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Path of a built guest, guests/build/<name>.elf (built by `make -C guests`). */
export function guestPath(name: string): string {
  return path.join(repoRoot, "guests/build", `${name}.elf`);
}

/** Milliseconds since `start` (a performance.now() value). */
export function since(start: number): number {
  return performance.now() - start;
}

/** Awaits `promise` and checks it rejects with a VmletError of `code` (whose message matches `mentions`). */
export async function rejectsWith(promise: Promise<unknown>, code: string, mentions?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (mentions) assert.match(e.message, mentions);
    return true;
  });
}
