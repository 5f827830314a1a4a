/**
 * Bounds on network work (issue 11): every operation with the runner cache has an overall
 * deadline (the `remote-timeout` input), and a transfer also has a low-speed limit like curl's
 * `--speed-limit`/`--speed-time`. A stall or a trickle is cut after one window; an honest
 * transfer of any size runs on until the deadline. Every request takes the deadline's signal,
 * so work that runs out of time is aborted, never left running.
 */

/** A network operation ran out of time or went too slowly. The tier is then switched off. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** The largest delay setTimeout honours; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Human form of a duration for messages: '2 s', '10 min'. */
export function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** The overall deadline of one operation: a signal that aborts with a DeadlineError. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** The error to throw once the signal has fired. */
  readonly error: DeadlineError;
}

export function deadline(ms: number, what: string): Deadline {
  const error = new DeadlineError(
    `${what} did not finish within ${formatMs(ms)} (the 'remote-timeout' input)`,
  );
  const controller = new AbortController();
  // unref: an expired operation is abandoned, and the timer alone never keeps the step alive.
  setTimeout(() => controller.abort(error), Math.min(ms, MAX_TIMER_MS)).unref();
  return { signal: controller.signal, error };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Low-speed limit: fewer than `bytesPerSecond` on average over `windowMs` cuts a transfer. */
export interface SpeedLimit {
  readonly bytesPerSecond: number;
  readonly windowMs: number;
}

/**
 * 1 KiB/s over a minute. A full stall is cut after a minute, as the old idle timer did, and so
 * is a trickle that used to reset it; anything a build cache can use goes far faster.
 */
export const LOW_SPEED: SpeedLimit = { bytesPerSecond: 1024, windowMs: 60_000 };

const BUCKETS = 10;

/**
 * Watches a transfer: `add` counts bytes as they arrive; when the bytes of the last window (kept
 * in ten buckets, so the window slides a tenth at a time) fall below the limit, `onSlow` is
 * called once with a DeadlineError. The first window starts with the request, so a server that
 * never answers is cut too. `stop` ends the watch.
 */
export class SpeedWatch {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private current = 0;
  private ticks = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(limit: SpeedLimit, what: string, onSlow: (err: DeadlineError) => void) {
    const minBytes = (limit.bytesPerSecond * limit.windowMs) / 1000;
    this.timer = setInterval(() => {
      this.ticks++;
      if (this.ticks >= BUCKETS) {
        const sum = this.counts.reduce((a, b) => a + b, 0);
        if (sum < minBytes) {
          this.stop();
          onSlow(
            new DeadlineError(
              `${what} went slower than ${limit.bytesPerSecond} bytes/s for ${formatMs(limit.windowMs)} (${sum} bytes)`,
            ),
          );
          return;
        }
      }
      this.current = (this.current + 1) % BUCKETS;
      this.counts[this.current] = 0;
    }, limit.windowMs / BUCKETS);
    this.timer.unref();
  }

  add(bytes: number): void {
    this.counts[this.current] = (this.counts[this.current] ?? 0) + bytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
