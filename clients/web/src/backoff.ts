/** How long to wait between reconnects: exponential, capped, with jitter so that many pages
 * cut off by one restart do not all come back in the same instant. */
export interface BackoffOptions {
  /** First wait, in milliseconds (default 500). */
  initialMs?: number;
  /** Each further wait is this many times the previous one (default 2). */
  multiplier?: number;
  /** No wait is longer than this (default 30 000). */
  maxMs?: number;
  /** Each wait is moved at random by up to this fraction of itself, either way (default 0.2). */
  jitter?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 500,
  multiplier: 2,
  maxMs: 30_000,
  jitter: 0.2,
};

export class Backoff {
  private readonly options: Required<BackoffOptions>;
  private attempt = 0;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
    const { initialMs, multiplier, maxMs, jitter } = this.options;
    if (!(initialMs > 0) || !(multiplier >= 1) || !(maxMs >= initialMs) || !(jitter >= 0 && jitter < 1)) {
      throw new RangeError(
        "backoff: need initialMs > 0, multiplier >= 1, maxMs >= initialMs and 0 <= jitter < 1",
      );
    }
  }

  /** The wait before the next attempt; each call counts one more failure. */
  next(): number {
    const { initialMs, multiplier, maxMs, jitter } = this.options;
    const base = Math.min(maxMs, initialMs * multiplier ** this.attempt);
    this.attempt += 1;
    const spread = base * jitter * (2 * this.random() - 1);
    return Math.min(maxMs, Math.max(0, Math.round(base + spread)));
  }

  /** After a success the next failure waits the initial time again. */
  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
