/**
 * Which pages a snapshot's memory changed since the snapshot it was taken over, and under
 * which layer digests each memory is saved. A diff layer (docs/snapshot-format.md) is the
 * union of the changed pages from a snapshot back to the saved base, so saving one costs
 * O(pages changed), never a comparison of whole images. Only small records are kept (page
 * numbers and digests, never the ancestors' memory), and only for the last
 * MAX_HISTORY_DEPTH snapshots of a chain.
 */

/** How many ancestors a snapshot remembers; older bases cannot be diffed against (save a full layer, or squash). */
export const MAX_HISTORY_DEPTH = 64;

export class PageHistory {
  /** Top-layer digests of layer chains whose memory is exactly this one (it was saved or loaded as them). */
  readonly savedAs = new Set<string>();
  #parent: PageHistory | undefined;

  private constructor(parent: PageHistory | undefined, readonly changed: Uint32Array) {
    this.#parent = parent;
  }

  /** Memory with no known ancestor: a first capture, or a snapshot loaded from a layout. */
  static root(): PageHistory {
    return new PageHistory(undefined, new Uint32Array(0));
  }

  /**
   * Memory taken over `parent`'s with the `written` pages (any order, repeats allowed)
   * replaced. Forgets the ancestors beyond MAX_HISTORY_DEPTH, or beyond the point where the
   * remembered page lists would outgrow the memory's page count, so a sandbox snapshotting
   * forever keeps a bounded record.
   */
  static over(parent: PageHistory, written: readonly number[], memoryPages: number): PageHistory {
    const node = new PageHistory(parent, Uint32Array.from(new Set(written)).sort());
    let pages = node.changed.length;
    let at: PageHistory = node;
    for (let depth = 1; at.#parent; depth++) {
      pages += at.#parent.changed.length;
      if (depth >= MAX_HISTORY_DEPTH || pages > memoryPages) {
        at.#parent = undefined;
        break;
      }
      at = at.#parent;
    }
    return node;
  }

  /**
   * The pages that differ from the memory saved with top-layer digest `digest`, ascending:
   * the union of the changed pages from here back to the ancestor saved so. Undefined when
   * no remembered ancestor (or this memory itself) was saved or loaded as `digest`.
   */
  /** Of `candidates` (top-layer digests), the one saved nearest to this memory: itself, then its parent, and so on. */
  nearestSaved(candidates: ReadonlySet<string>): string | undefined {
    for (let at: PageHistory | undefined = this; at; at = at.#parent) {
      for (const digest of at.savedAs) if (candidates.has(digest)) return digest;
    }
    return undefined;
  }

  changedSince(digest: string): Uint32Array | undefined {
    const lists: Uint32Array[] = [];
    for (let at: PageHistory | undefined = this; at; at = at.#parent) {
      if (at.savedAs.has(digest)) return union(lists);
      lists.push(at.changed);
    }
    return undefined;
  }
}

/** Sorted union of sorted page lists. */
function union(lists: readonly Uint32Array[]): Uint32Array {
  if (lists.length === 1) return lists[0]!;
  const all = new Set<number>();
  for (const list of lists) for (const page of list) all.add(page);
  return Uint32Array.from(all).sort();
}
