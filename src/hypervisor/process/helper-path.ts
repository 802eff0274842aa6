/** Where the process backend's helper program is: built beside the native addon, or prebuilt in the package. */
import { BackendUnavailableError } from "../../errors/errors.js";
import { nativeExecutableCandidates, nativeExecutablePath } from "../../native/artifacts.js";

const HELPER = "vmlet-process-helper";

/** Found once per process: every sandbox creation asks (resolveBackend). */
let found: string | undefined;

export function helperPath(): string {
  found ??= nativeExecutablePath(HELPER);
  if (found) return found;
  throw new BackendUnavailableError(
    `the process backend's helper program is missing (in a checkout: \`npm run build\`; in a project: reinstall vmlet). Tried:\n  ${nativeExecutableCandidates(HELPER).join("\n  ")}`,
  );
}
