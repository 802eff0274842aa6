/** vmlet's own version, from package.json (recorded in saved snapshots). */
import { readFileSync } from "node:fs";
import path from "node:path";
import packageRoot from "./package-root.cjs";

export const VMLET_VERSION: string = (JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string }).version;
