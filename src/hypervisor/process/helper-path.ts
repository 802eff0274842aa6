/** Where the process backend's helper program is: built beside the native addon. */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BackendUnavailableError } from "../../errors/errors.js";

const HELPER = "vmlet-process-helper";

let found: string | undefined;

export function helperPath(): string {
  if (found) return found;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
  const candidates = [path.join(root, "build/Release", HELPER), path.join(root, "prebuilds/linux-x64", HELPER)];
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return (found = file);
    } catch {
      // try the next
    }
  }
  throw new BackendUnavailableError(`the process backend's helper is not built; run \`npm run build\`. Tried:\n  ${candidates.join("\n  ")}`);
}
