/**
 * Exit notifications of async runs: one eventfd per thread, which every child writes after
 * posting an exit of a run the host awaits (the resume frame's `notify`), watched on this
 * thread's event loop (native/process_notify.c). An async call's result then reaches
 * JavaScript with one wake-up, the event loop's, instead of a waiting thread's and then the
 * loop's. A notification is only a hint: each waiting run checks its own mailbox, so a
 * guest that writes the eventfd itself only makes the host look.
 */
import { loadAddon, type ProcessNotifier } from "../../native/addon.js";

let eventfd: number | undefined;
let notifier: ProcessNotifier | undefined;
const waiting = new Set<() => void>();

/** The eventfd children write (made, and watched, on first use; it lives as long as the thread). */
export function notifyFd(): number {
  if (eventfd === undefined) {
    const addon = loadAddon();
    const fd = addon.eventfdCreate();
    try {
      notifier = addon.processNotifier(fd, checkWaiting); // it owns the eventfd from here
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
    eventfd = fd;
  }
  return eventfd;
}

/** Calls `check` at every notification until the returned function is called. */
export function onExitNotification(check: () => void): () => void {
  waiting.add(check);
  return () => waiting.delete(check);
}

function checkWaiting(): void {
  for (const check of [...waiting]) check();
}

/** @internal Tests: whether the eventfd and its watch exist. */
export function exitNotifierStarted(): boolean {
  return notifier !== undefined;
}
