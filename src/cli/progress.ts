/**
 * A one-line progress bar on stderr for long snapshot work (save, verify, checked load).
 * Drawn only on a TTY, never in --json mode, and only once the work is large (> 64 MiB)
 * or slow (> 200 ms); redrawn at most every 100 ms; erased when done.
 */
import { formatBytes } from "./format.js";

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

export interface ProgressOptions {
  /** False turns the bar off (e.g. --json). Default true; a non-TTY stream never gets a bar. */
  readonly enabled?: boolean;
  readonly minBytes?: number;
  readonly minMs?: number;
  readonly now?: () => number;
}

const REDRAW_MS = 100;

export class ProgressBar {
  private readonly started: number;
  private readonly active: boolean;
  private lastDraw = -Infinity;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly stream: ProgressStream = process.stderr,
    private readonly options: ProgressOptions = {},
  ) {
    this.active = (options.enabled ?? true) && stream.isTTY === true;
    this.started = this.now();
  }

  /** The onProgress callback for the library (bytes done, bytes total). */
  readonly update = (done: number, total: number): void => {
    if (!this.active) return;
    const now = this.now();
    const worthIt = total > (this.options.minBytes ?? 64 * 2 ** 20) || now - this.started > (this.options.minMs ?? 200);
    if (!worthIt) return;
    if (done < total && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.draw(done, total);
  };

  /** Erases the bar if it was drawn. */
  finish(): void {
    if (this.drawn) this.stream.write("\r\x1b[K");
    this.drawn = false;
  }

  /** Whether the bar has been drawn at least once and not yet erased. */
  get visible(): boolean {
    return this.drawn;
  }

  private draw(done: number, total: number): void {
    const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const tail = ` ${percent} ${formatBytes(done)} / ${formatBytes(total)}`;
    const columns = this.stream.columns || 80;
    const width = Math.max(10, Math.min(40, columns - this.label.length - tail.length - 4));
    const filled = Math.round(fraction * width);
    this.stream.write(`\r${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}]${tail}\x1b[K`);
    this.drawn = true;
  }

  private now(): number {
    return this.options.now ? this.options.now() : performance.now();
  }
}
