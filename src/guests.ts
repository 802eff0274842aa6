/** Guests that ship with the package. */
import path from "node:path";
import packageRoot from "./package-root.cjs";

/** The path of a guest ELF built from guests/<name>.c (in the package: only "demo"). */
export const shippedGuestPath = (name: string): string => path.join(packageRoot, "guests/build", `${name}.elf`);

/**
 * The demo guest ELF that ships prebuilt with vmlet (source: guests/demo.c): add, echo,
 * mean, count_byte, repeat, greet (calls the host's `log_line`), noop, spin_forever, ….
 */
export const demoGuestPath = (): string => shippedGuestPath("demo");
