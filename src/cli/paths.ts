import path from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (dist/src/cli → ../../..). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export const guestPath = (name: string): string => path.join(packageRoot, "guests/build", `${name}.elf`);
