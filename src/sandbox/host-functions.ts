/**
 * Host functions the guest may call. The set is mutable: functions can be added
 * after the sandbox exists (docs/api.md, "Host functions").
 */
import { InvalidConfigError } from "../errors/errors.js";
import { describe } from "./option-checks.js";
import { MAX_PARAMS } from "../abi/constants.js";
import type { HostFunctionSignature } from "../snapshot/host-function-rules.js";
import { formatSignature, isReturnType, isValueType, type JsTuple, type JsTypes, type ReturnType, type Signature, type ValueType } from "../abi/types.js";

/** A host function's implementation; async ones are allowed for `call()`, not `callSync()`. */
export type HostFunctionImpl<P extends readonly ValueType[], R extends ReturnType> = (
  ...args: JsTuple<P>
) => JsTypes[R] | Promise<JsTypes[R]>;

export interface HostFunction extends Signature {
  readonly name: string;
  readonly impl: (...args: never[]) => unknown;
}

/**
 * A host function definition as passed in configs. `impl` is declared as a method so that a
 * definition typed by defineHostFunction (say `(a: number) => number` for ["i32"]) fits the
 * plain `HostFunctionDefinition[]` of every config: method parameters compare bivariantly.
 */
export interface HostFunctionDefinition<P extends readonly ValueType[] = readonly ValueType[], R extends ReturnType = ReturnType> {
  readonly name: string;
  readonly params: P;
  readonly returns: R;
  impl(...args: JsTuple<P>): JsTypes[R] | Promise<JsTypes[R]>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class HostFunctionRegistry {
  private readonly functions = new Map<string, HostFunction>();

  register(name: string, params: readonly ValueType[], returns: ReturnType, impl: unknown): void {
    if (typeof name !== "string" || !NAME.test(name) || name.length > 128) {
      throw new InvalidConfigError(`host function name must be a C identifier of at most 128 characters (got ${describe(name)})`);
    }
    if (!Array.isArray(params) || params.length > MAX_PARAMS || !params.every(isValueType)) {
      throw new InvalidConfigError(`host function "${name}": params must be an array of at most ${MAX_PARAMS} of i32, u32, i64, u64, f32, f64, bool, string, bytes`);
    }
    if (!isReturnType(returns)) throw new InvalidConfigError(`host function "${name}": invalid return type ${describe(returns)}`);
    if (typeof impl !== "function") throw new InvalidConfigError(`host function "${name}": implementation must be a function`);
    this.functions.set(name, { name, params: [...params], returns, impl: impl as HostFunction["impl"] });
  }

  get(name: string): HostFunction | undefined {
    return this.functions.get(name);
  }

  /** Every registered function's signature, for snapshots. */
  list(): HostFunctionSignature[] {
    return [...this.functions.values()].map(({ name, params, returns }) => ({ name, params: [...params], returns }));
  }

  /** Names and signatures, e.g. for snapshots and error messages. */
  signatures(): string[] {
    return [...this.functions.values()].map((f) => formatSignature(f.name, f));
  }
}

/**
 * Checks a `hostFunctions` option before anything is built: an array of
 * { name, params, returns, impl }, each checked as register() checks it. Errors name
 * the option and the entry ("hostFunctions[2]: …").
 */
export function checkHostFunctions(value: unknown, option = "hostFunctions"): readonly HostFunctionDefinition[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidConfigError(`${option} must be an array of { name, params, returns, impl } (got ${describe(value)})`);
  const registry = new HostFunctionRegistry();
  value.forEach((f: unknown, i) => {
    if (typeof f !== "object" || f === null) throw new InvalidConfigError(`${option}[${i}] must be an object { name, params, returns, impl } (got ${describe(f)})`);
    const { name, params, returns, impl } = f as Record<string, unknown>;
    try {
      registry.register(name as string, params as ValueType[], returns as ReturnType, impl);
    } catch (error) {
      if (error instanceof InvalidConfigError) throw new InvalidConfigError(`${option}[${i}]: ${error.message}`);
      throw error;
    }
  });
  return value as HostFunctionDefinition[];
}

/**
 * A typed host function: the implementation's parameters and result are checked against
 * `params` and `returns` by tsc. The result works everywhere host functions are taken: the
 * builder, createSandbox, Sandbox.fromSnapshot, SandboxPool and registerHostFunction.
 * Checked at once as registering checks it, so a bad definition fails where it is written.
 */
export function defineHostFunction<const P extends readonly ValueType[], const R extends ReturnType>(
  name: string,
  params: P,
  returns: R,
  impl: HostFunctionImpl<P, R>,
): HostFunctionDefinition<P, R> {
  new HostFunctionRegistry().register(name, params, returns, impl);
  return Object.freeze({ name, params: Object.freeze([...params]) as unknown as P, returns, impl });
}

/** The arguments of the methods that take a host function either way: a definition, or its four parts. */
export type HostFunctionArgs = [definition: HostFunctionDefinition] | [name: string, params: readonly ValueType[], returns: ReturnType, impl: unknown];

/** The definition `args` describe; a non-object single argument is left for the registry's checks to name. */
export function hostFunctionFrom(args: HostFunctionArgs): HostFunctionDefinition {
  if (args.length !== 1) {
    const [name, params, returns, impl] = args;
    return { name, params, returns, impl } as HostFunctionDefinition;
  }
  const [definition] = args;
  if (typeof definition !== "object" || definition === null) {
    throw new InvalidConfigError(`a host function must be given as a definition object or as (name, params, returns, impl) (got ${describe(definition)})`);
  }
  return definition;
}
