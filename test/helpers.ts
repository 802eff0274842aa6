/** Shared test helpers: guest paths and the KVM requirement. */
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: compiled tests live in dist/test, two levels below it. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Path of a built guest, guests/build/<name>.elf (built by `make -C guests`). */
export function guestPath(name: string): string {
  return path.join(repoRoot, "guests/build", `${name}.elf`);
}

/**
 * Throws unless /dev/kvm exists and is usable. KVM tests must never skip: a CI
 * machine without KVM has to fail loudly rather than pass with nothing tested.
 */
export function requireKvm(): void {
  if (!existsSync("/dev/kvm")) {
    throw new Error("these tests need KVM, but /dev/kvm does not exist on this machine (enable virtualisation or nested KVM; tests never skip)");
  }
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch (error) {
    throw new Error(`these tests need KVM, but /dev/kvm is not readable and writable by this user: ${(error as Error).message}`, { cause: error });
  }
}

/** Milliseconds since `start` (a performance.now() value). */
export function since(start: number): number {
  return performance.now() - start;
}
