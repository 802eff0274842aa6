/**
 * Memfds of destroyed process-backend machines (guest memory, control memory) kept for the
 * next machine. Each waits until the background thread that retires its child has emptied
 * it (native/reaper.c): `emptied()` says 0 while that runs, 1 once the child is dead and the
 * file empty, −1 if the file could not be emptied (then it is never reused).
 */
import type { NativeAddon } from "../native/addon.js";

export interface SpareFile {
  readonly fd: number;
  readonly emptied: () => number;
}

/** @internal An emptied spare, taken out of the list; failed ones are dropped and closed, pending ones stay. */
export function takeEmptied<T extends SpareFile>(addon: NativeAddon, list: T[] | undefined): T | undefined {
  if (!list) return undefined;
  for (let i = list.length - 1; i >= 0; i--) {
    const state = list[i]!.emptied();
    if (state === 0) continue;
    const [spare] = list.splice(i, 1);
    if (state === 1) return spare;
    addon.closeFd(spare!.fd);
  }
  return undefined;
}

/** Keeps `spare` in `list` while it holds fewer than `capacity`, else closes its fd (the background thread works on its own copy). */
export function keepSpare<T extends SpareFile>(addon: NativeAddon, list: T[], spare: T, capacity: number): void {
  if (list.length < capacity) list.push(spare);
  else addon.closeFd(spare.fd);
}
