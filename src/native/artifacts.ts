/**
 * Where the package's native artifacts live. Two layouts, searched in this order:
 *   build/Release/<name>, build/Debug/<name>   built here (a contributor's checkout, or
 *                                              an install that compiled from source)
 *   prebuilds/<platform>-<arch>/<file>         prebuilt, shipped in the npm package
 * The addon is loaded from the first of these that holds it (addonCandidates), else by
 * node-gyp-build, which searches the same places (prebuilt addons are named
 * `<target>.napi.glibc.node`, tags it matches against the running Node). Other
 * binding.gyp targets of type "executable" (the process backend's helper) ship as
 * prebuilds/<platform>-<arch>/<target_name>, and are found with `nativeExecutablePath`.
 * scripts/stage-prebuilds.mjs fills prebuilds/ when the package is packed.
 */
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";
import packageRoot from "../package-root.cjs";

/** The prebuilds folder for this machine, e.g. prebuilds/linux-x64. */
export const prebuildsDir = (): string => path.join(packageRoot, "prebuilds", `${process.platform}-${process.arch}`);

/** The places an executable binding.gyp target named `name` may be, in search order. */
export function nativeExecutableCandidates(name: string): string[] {
  return [
    path.join(packageRoot, "build/Release", name),
    path.join(packageRoot, "build/Debug", name),
    path.join(prebuildsDir(), name),
  ];
}

/** The first runnable copy of an executable binding.gyp target, or undefined. */
export function nativeExecutablePath(name: string): string | undefined {
  return nativeExecutableCandidates(name).find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The addon files node-gyp-build would pick first, in its order, for a direct load: requiring
 * node-gyp-build and its search cost ~4 ms of a process's first sandbox, a dlopen ~1 ms. The
 * prebuilt one only where node-gyp-build would take it too (glibc: LIBC unset, empty or
 * "glibc", and no /etc/alpine-release). None where node-gyp-build is told otherwise
 * (VMLET_PREBUILD names another folder, PREBUILDS_ONLY skips build/): it decides then.
 */
export function addonCandidates(): string[] {
  if (process.env.VMLET_PREBUILD || process.env.PREBUILDS_ONLY) return [];
  const glibc = (process.env.LIBC || (existsSync("/etc/alpine-release") ? "musl" : "glibc")) === "glibc";
  return [
    path.join(packageRoot, "build/Release/vmlet.node"),
    path.join(packageRoot, "build/Debug/vmlet.node"),
    ...(glibc ? [path.join(prebuildsDir(), "vmlet.napi.glibc.node")] : []),
  ];
}
