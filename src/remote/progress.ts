/**
 * Progress of a long transfer, as `actions/cache` shows it: while bytes flow, one log line every
 * few seconds (5 s by default) with the bytes so far, the total when it is known, and the
 * average rate; a transfer that ends before the first line prints nothing at all.
 *
 *   const progress = new Progress(`Downloading ${key}`, contentLength);
 *   try { for await (const chunk of body) progress.add(chunk.length); } finally { progress.done(); }
 *
 * `Downloading clyde-…: 96.0 MiB of 512.0 MiB (18.8%), 19.2 MiB/s`. The timer never keeps the
 * process alive (unref), and `done` may be called any number of times.
 */
import * as core from '@actions/core';
import { formatBytes } from '../util/bytes.js';

export const PROGRESS_INTERVAL_MS = 5000;

export class Progress {
  private bytes = 0;
  private readonly start = performance.now();
  private readonly timer: NodeJS.Timeout | undefined;
  private lines = 0;
  private finished = false;

  /**
   * @param label what is transferred, the start of every line (`Downloading <key>`)
   * @param total the size when known (a Content-Length, a file's size); else undefined
   * @param log where lines go (`core.info` by default)
   * @param intervalMs time between lines
   */
  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly log: (line: string) => void = (line) => core.info(line),
    intervalMs: number = PROGRESS_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => this.print(), Math.max(1, intervalMs));
    this.timer.unref();
  }

  /** Count `n` more bytes transferred. */
  add(n: number): void {
    this.bytes += n;
  }

  /** Bytes counted so far. */
  get transferred(): number {
    return this.bytes;
  }

  /**
   * Stop. A transfer that printed progress ends with one last line (its final count and
   * rate); one too short to print any stays silent.
   */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    if (this.lines > 0) this.print();
  }

  /** The line for the current count, e.g. `Downloading k: 1.0 MiB of 4.0 MiB (25.0%), 2.0 MiB/s`. */
  line(now: number = performance.now()): string {
    const seconds = Math.max(now - this.start, 1) / 1000;
    const rate = `${formatBytes(Math.round(this.bytes / seconds))}/s`;
    const of =
      this.total !== undefined && Number.isFinite(this.total) && this.total > 0
        ? ` of ${formatBytes(this.total)} (${((100 * this.bytes) / this.total).toFixed(1)}%)`
        : '';
    return `${this.label}: ${formatBytes(this.bytes)}${of}, ${rate}`;
  }

  private print(): void {
    this.lines++;
    this.log(this.line());
  }
}
