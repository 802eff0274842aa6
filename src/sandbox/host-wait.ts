/**
 * Running a host function for an async call. While its promise is pending the guest is
 * not running, so the deadline and kill() are enforced here, not by the vCPU.
 */
import type { GuestValue } from "../abi/types.js";
import { CancelledError, type VmletError } from "../errors/errors.js";
import { isPromiseLike, type CallSession, type Step } from "./call-session.js";

/**
 * Calls the host function and writes its result for the guest. `setStop` receives a
 * function that ends the wait with CancelledError (kill()), and undefined once settled.
 */
export async function invokeHostAsync(
  session: CallSession,
  step: Extract<Step, { kind: "host-call" }>,
  setStop: (stop: (() => void) | undefined) => void,
): Promise<void> {
  let result: unknown;
  let promised: boolean;
  try {
    result = (step.fn.impl as (...a: GuestValue[]) => unknown)(...step.args);
    promised = isPromiseLike(result); // reads `then`: the result's own code, which may throw
  } catch (error) {
    session.hostThrew(step.fn, error);
    return;
  }
  if (!promised) {
    session.hostReturned(step.fn, result);
    return;
  }
  const pending = result as PromiseLike<unknown>;
  await new Promise<void>((resolve, reject) => {
    const msLeft = session.msLeft();
    const timer = msLeft === undefined ? undefined : setTimeout(() => stop(session.timeoutError()), msLeft);
    let finished = false;
    const settle = (): boolean => {
      if (finished) return false; // a late settle after a timeout or kill must not touch guest memory
      finished = true;
      clearTimeout(timer);
      setStop(undefined);
      return true;
    };
    const stop = (error: VmletError): void => {
      if (settle()) reject(error);
    };
    setStop(() => stop(new CancelledError(`call was cancelled while host function "${step.fn.name}" was pending`)));
    /** Writes the host function's outcome for the guest; if even that throws, the call fails with it rather than never settling. */
    const answer = (write: () => void): void => {
      if (!settle()) return;
      try {
        write();
        resolve();
      } catch (error) {
        reject(error);
      }
    };
    Promise.resolve(pending).then(
      (value) => answer(() => session.hostReturned(step.fn, value)),
      (error: unknown) => answer(() => session.hostThrew(step.fn, error)),
    );
  });
}
