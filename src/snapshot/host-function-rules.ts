/**
 * The host-function rule for snapshots: a sandbox resumed from a snapshot (or restored
 * to one) must offer every host function the snapshot was taken with, with the same
 * signature. Extra functions are fine. See docs/host-functions.md.
 */
import type { ReturnType, ValueType } from "../abi/types.js";
import { HostFunctionsIncompatibleError } from "../errors/errors.js";
import type { HostFunctionRegistry } from "../sandbox/host-functions.js";

export interface HostFunctionSignature {
  readonly name: string;
  readonly params: readonly ValueType[];
  readonly returns: ReturnType;
}

const format = (f: HostFunctionSignature): string => `${f.name}(${f.params.join(", ")}) -> ${f.returns}`;

/** Throws HostFunctionsIncompatibleError listing what is missing or different. */
export function requireSuperset(required: readonly HostFunctionSignature[], offered: HostFunctionRegistry, action: string): void {
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const want of required) {
    const have = offered.get(want.name);
    if (!have) missing.push(format(want));
    else if (have.returns !== want.returns || have.params.length !== want.params.length || have.params.some((p, i) => p !== want.params[i])) {
      mismatched.push(`${format(want)} (offered ${format(have)})`);
    }
  }
  if (missing.length > 0 || mismatched.length > 0) throw new HostFunctionsIncompatibleError(action, missing, mismatched);
}
