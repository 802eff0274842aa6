/**
 * Closed sandboxes hand their memory mapping to the next sandbox of the same size (a
 * fresh 1 GiB ArrayBuffer per sandbox made V8 run a full GC each time). The mapping is
 * reset to zero pages in between: nothing of one guest reaches the next. Measured by the
 * pages a fresh sandbox's first snapshot stores (its non-zero pages).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Sandbox } from "../src/index.js";

import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

/** Each test uses its own guest size, so its first sandbox gets a new mapping: a clean baseline. Large enough for huge pages. */
const HEAP_A = 24 << 20;
const HEAP_B = 40 << 20;

/** Non-zero pages of a just-built sandbox, which then fills 4 MiB of its heap and closes. */
async function freshPagesThenDirty(heap: number, round: number): Promise<number> {
  const sb = await buildSnapshotGuest(heap);
  const pages = sb.snapshot().pagesStored;
  assert.equal(sb.callSync("heap_fill", 4 << 20, round + 1), true);
  sb.callSync("touch_pages", 256, 0xab);
  sb.close();
  return pages;
}

test("a sandbox built after one that wrote its memory and closed has only its own non-zero pages", async () => {
  const first = await freshPagesThenDirty(HEAP_A, 0); // a new mapping
  for (let round = 1; round < 5; round++) {
    assert.equal(await freshPagesThenDirty(HEAP_A, round), first, `round ${round}: a reused mapping holds nothing of the last guest`);
  }
});

test("after a sandbox made from a snapshot closes, the next one of that size is fresh, not the snapshot's file", async () => {
  const base = await buildSnapshotGuest(HEAP_B); // a new mapping
  const freshPages = base.snapshot().pagesStored;
  base.callSync("heap_fill", 4 << 20, 3);
  const snap = base.snapshot();
  base.close();
  for (let round = 0; round < 3; round++) {
    const fromSnap = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.equal(fromSnap.callSync("heap_check", 3), true);
    fromSnap.callSync("touch_pages", 32, 9);
    fromSnap.close();
    assert.equal(await freshPagesThenDirty(HEAP_B, round), freshPages, "no pages of the snapshot or of the last guest");
  }
  const again = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  assert.equal(again.callSync("heap_check", 3), true, "the snapshot itself is untouched");
  assert.equal(again.callSync("scratch_sum"), 0);
  again.close();
});
