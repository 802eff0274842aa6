/**
 * The file behind a snapshot image's view. A backend that restores by comparing memory
 * with the image (the process backend) reads the file's data ranges, so that pages the
 * image does not hold are never faulted in through the view.
 */
const files = new WeakMap<Uint8Array, number>();

export function registerImageView(view: Uint8Array, fd: number): void {
  files.set(view, fd);
}

/** The fd of the image file `view` maps, or undefined if it is not an image's view. */
export function imageFileOf(view: Uint8Array): number | undefined {
  return files.get(view);
}
