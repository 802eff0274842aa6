/** Shared test helpers: guest paths and timing. */
import path from "node:path";
import { fileURLToPath } from "node:url";

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
