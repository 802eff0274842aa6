/** vmlet's own version, from package.json (recorded in saved snapshots). */
import { readFileSync } from "node:fs";

export const VMLET_VERSION: string = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
