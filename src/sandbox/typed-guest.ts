/**
 * A typed view of a sandbox's guest functions: `sb.typed<Guest>()`, where Guest is an
 * interface of the guest's exports (hand-written, or from `vmlet guest types guest.elf`).
 * Only types change: every call goes to the sandbox's call()/callSync(), which still check
 * names and arguments at run time against the guest's own table.
 */
import type { CallOptions } from "./call-options.js";
import type { GuestValue } from "../abi/types.js";

/** A function of the guest interface: what it takes and returns. */
type GuestMethod = (...args: never[]) => unknown;

/** The names of T that are guest functions. */
export type GuestFunctionName<T> = { [K in keyof T & string]: T[K] extends GuestMethod ? K : never }[keyof T & string];

/** The arguments of T[K], optionally followed by the call's options. */
export type GuestCallArgs<T, K extends GuestFunctionName<T>> = T[K] extends (...args: infer A) => unknown
  ? [...args: A] | [...args: A, options: CallOptions]
  : never;

/** What T[K] returns (a declared Promise is unwrapped: the view adds its own). */
export type GuestCallResult<T, K extends GuestFunctionName<T>> = T[K] extends (...args: never[]) => infer R ? Awaited<R> : never;

export interface TypedGuest<T> {
  /** sb.call(), checked by tsc against T. */
  call<K extends GuestFunctionName<T>>(name: K, ...args: GuestCallArgs<T, K>): Promise<GuestCallResult<T, K>>;
  /** sb.callSync(), checked by tsc against T. */
  callSync<K extends GuestFunctionName<T>>(name: K, ...args: GuestCallArgs<T, K>): GuestCallResult<T, K>;
}

/** What the view needs of a sandbox. */
interface Callable {
  call(name: string, ...args: Array<GuestValue | CallOptions>): Promise<GuestValue | undefined>;
  callSync(name: string, ...args: Array<GuestValue | CallOptions>): GuestValue | undefined;
}

export function typedGuest<T>(sandbox: Callable): TypedGuest<T> {
  return {
    call: (name, ...args) => sandbox.call(name, ...(args as Array<GuestValue | CallOptions>)) as Promise<never>,
    callSync: (name, ...args) => sandbox.callSync(name, ...(args as Array<GuestValue | CallOptions>)) as never,
  };
}
