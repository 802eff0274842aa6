/**
 * The file behind a snapshot image's view, and its data ranges. A backend that restores by
 * comparing memory with the image (the process backend) reads the file's data ranges, so
 * that pages the image does not hold are never faulted in through the view: reading a hole
 * of a shared memfd mapping allocates it, and the image would grow with every restore.
 */
interface ImageFile {
  readonly fd: number;
  /** [start, end, ...] bytes the file holds data for; everything else reads as zeros. */
  readonly dataRanges: () => readonly number[];
}

const files = new WeakMap<Uint8Array, ImageFile>();

export function registerImageView(view: Uint8Array, fd: number, dataRanges: () => readonly number[]): void {
  files.set(view, { fd, dataRanges });
}

/** The fd of the image file `view` maps, or undefined if it is not an image's view. */
export function imageFileOf(view: Uint8Array): number | undefined {
  return files.get(view)?.fd;
}

/** The data ranges of the image file `view` maps, or undefined if it is not an image's view. */
export function imageDataOf(view: Uint8Array): readonly number[] | undefined {
  return files.get(view)?.dataRanges();
}
