/** Digests already known for memory images (from a load or an earlier save), so a save need not hash again. */
import type { MemoryImage } from "../memory-image.js";

const known = new WeakMap<MemoryImage, string>();

export const rememberDigest = (image: MemoryImage, digest: string): void => void known.set(image, digest);
export const knownDigest = (image: MemoryImage): string | undefined => known.get(image);
