/**
 * What the policy bundle and the data documents share: a load attempt run now and again every
 * poll interval, never two at once, and a record of how the attempts went (for /health and the
 * status endpoints). What an attempt fetches, checks and activates is the caller's.
 */
import { SmartAuthzError, describeError, type ErrorCode } from "../core/errors.js";

/** How loading a source has gone so far. */
export interface LoadRecord {
  source: string;
  loadedAt: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  activations: number;
  failures: number;
}

export function newLoadRecord(source: string): LoadRecord {
  return {
    source,
    loadedAt: undefined,
    lastError: undefined,
    lastErrorAt: undefined,
    activations: 0,
    failures: 0,
  };
}

/** A new copy was activated. */
export function recordActivation(record: LoadRecord): void {
  record.loadedAt = new Date().toISOString();
  record.lastError = undefined;
  record.lastErrorAt = undefined;
  record.activations++;
}

/** An attempt failed (the last good copy keeps serving): the failure as a SmartAuthzError. */
export function recordFailure(record: LoadRecord, err: unknown, code: ErrorCode): SmartAuthzError {
  const error = err instanceof SmartAuthzError ? err : new SmartAuthzError(code, describeError(err));
  record.lastError = error.message;
  record.lastErrorAt = new Date().toISOString();
  record.failures++;
  return error;
}

/**
 * Runs `attempt` on start, on `reload()` and every `intervalMs` (0: never by itself). A reload
 * asked for while one runs joins it. `attempt(force)` resolves true when it activated a new copy
 * and must never reject.
 */
export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly attempt: (force: boolean) => Promise<boolean>,
  ) {}

  /** The first attempt (resolving either way), then polling. */
  async start(): Promise<void> {
    await this.reload(false);
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `force` ignores what marks the copy in use as unchanged (ETag, file stamp): SIGHUP. */
  reload(force = true): Promise<boolean> {
    if (!this.inFlight) {
      this.inFlight = this.attempt(force).finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  private schedule(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setTimeout(() => {
      void this.reload(false).finally(() => {
        if (this.timer) this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }
}
