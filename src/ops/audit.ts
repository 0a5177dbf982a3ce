/**
 * The audit log: carries out the policy's `{"type": "audit", "event": AuditEvent}` obligations.
 *
 * Every audit record is one JSON line `{"timestamp", "decision_id", "event"}` appended to a file
 * opened in append mode (never truncated or rewritten) and flushed to disk (fsync) before the
 * decision is released. A decision whose audit record cannot be written is not released: it is
 * replaced by a fail-closed deny (500, `audit-unavailable`). The policy decides what to audit
 * (every break-the-glass access, every label denial, optionally every decision); this module
 * only makes sure it happens.
 */
import { randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import { failClosed, type Decision, type Obligation } from "../core/contract.js";
import { SmartAuthzError, describeError } from "../core/errors.js";

/** One line of the audit file. */
export interface AuditRecord {
  /** When the host wrote the record (ISO 8601, UTC). */
  timestamp: string;
  /** The decision the record belongs to (the HTTP layer's X-Decision-Id). */
  decision_id: string;
  /** The FHIR R4 AuditEvent the policy produced. */
  event: AuditEvent;
}

export interface AuditEvent {
  resourceType: "AuditEvent";
  [key: string]: unknown;
}

export interface AuditObligation extends Obligation {
  type: "audit";
  event: AuditEvent;
}

/** The parts of a FileHandle the log uses; tests may supply their own. */
export interface AuditFile {
  appendFile(data: string, encoding: "utf8"): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface AuditLogOptions {
  /**
   * When to fsync: after every append ("always", the default) or only for appends that hold a
   * break-the-glass event ("btg"). A failed write fails the decision either way.
   */
  sync?: "always" | "btg";
  /** File mode for a newly created log (default 0o600: audit records are PHI). */
  mode?: number;
  /** Clock for the `timestamp` field. */
  clock?: () => Date;
  /** Opens the file in append mode; defaults to fs.promises.open. */
  openFile?: (path: string, flags: "a", mode: number) => Promise<AuditFile>;
}

/**
 * An append-only JSON-lines audit file. Appends are serialised, so records of concurrent
 * decisions never interleave and each append's fsync covers everything before it.
 */
export class AuditLog {
  readonly path: string;
  private readonly syncMode: "always" | "btg";
  private readonly mode: number;
  private readonly clock: () => Date;
  private readonly openFile: (path: string, flags: "a", mode: number) => Promise<AuditFile>;
  private file: AuditFile | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** A write failed part-way: the next append starts on a fresh line. */
  private dirty = false;

  constructor(path: string, options: AuditLogOptions = {}) {
    if (typeof path !== "string" || path === "") {
      throw new SmartAuthzError("CONFIG_INVALID", "the audit log needs a file path");
    }
    this.path = path;
    this.syncMode = options.sync ?? "always";
    this.mode = options.mode ?? 0o600;
    this.clock = options.clock ?? (() => new Date());
    this.openFile = options.openFile ?? ((p, flags, mode) => open(p, flags, mode));
  }

  /**
   * Appends one record per event, in one write, then fsyncs (see `sync`). Resolves with the
   * records written; rejects with SmartAuthzError("AUDIT_WRITE_FAILED") when they were not.
   */
  append(events: readonly AuditEvent[], decisionId: string): Promise<AuditRecord[]> {
    const run = this.queue.then(() => this.write(events, decisionId));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the file; the next append opens the path again (for log rotation, e.g. on SIGHUP). */
  reopen(): Promise<void> {
    const run = this.queue.then(() => this.release());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the file for good: later appends fail (and so fail their decisions closed). */
  close(): Promise<void> {
    this.closed = true;
    return this.reopen();
  }

  private async write(events: readonly AuditEvent[], decisionId: string): Promise<AuditRecord[]> {
    if (this.closed) throw this.failure("the audit log is closed");
    const timestamp = this.clock().toISOString();
    const records = events.map((event) => ({
      timestamp,
      decision_id: decisionId,
      event: event.recorded === undefined ? { ...event, recorded: timestamp } : event,
    }));
    if (records.length === 0) return records;
    const text = (this.dirty ? "\n" : "") + records.map((r) => `${JSON.stringify(r)}\n`).join("");
    try {
      this.file ??= await this.openFile(this.path, "a", this.mode);
      this.dirty = true;
      await this.file.appendFile(text, "utf8");
      this.dirty = false;
      if (this.syncMode === "always" || events.some(isBreakTheGlass)) await this.file.sync();
    } catch (err) {
      await this.release();
      throw this.failure(describeError(err), err);
    }
    return records;
  }

  private async release(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    if (file) {
      try {
        await file.close();
      } catch {
        // the handle is unusable either way
      }
    }
  }

  private failure(message: string, cause?: unknown): SmartAuthzError {
    const code = (cause as { code?: unknown } | undefined)?.code;
    return new SmartAuthzError("AUDIT_WRITE_FAILED", `cannot write the audit log ${this.path}: ${message}`, {
      path: this.path,
      ...(typeof code === "string" ? { cause: code } : {}),
    });
  }
}

/** An AuditEvent whose purpose of event is break-the-glass (v3-ActReason BTG). */
export function isBreakTheGlass(event: AuditEvent): boolean {
  const purposes = Array.isArray(event.purposeOfEvent) ? (event.purposeOfEvent as unknown[]) : [];
  return purposes.some((p) => {
    const codings = (p as { coding?: unknown } | null)?.coding;
    return Array.isArray(codings) && codings.some((c) => (c as { code?: unknown } | null)?.code === "BTG");
  });
}

/** The audit obligations of a decision and of its batch entries, in order. */
export function auditObligations(decision: Decision): Obligation[] {
  const own = (decision.obligations ?? []).filter((o) => o?.type === "audit");
  const nested = (decision.entries ?? []).flatMap((e) => auditObligations(e));
  return [...own, ...nested];
}

function isAuditObligation(o: Obligation): o is AuditObligation {
  const event = o.event as { resourceType?: unknown } | null | undefined;
  return (
    typeof event === "object" &&
    event !== null &&
    !Array.isArray(event) &&
    event.resourceType === "AuditEvent"
  );
}

export interface CarryOutOptions {
  /** The decision id recorded with each event (default: a random UUID). */
  decisionId?: string;
  /** Told why auditing failed (for the operator's log; the client only sees `audit-unavailable`). */
  onError?: (error: SmartAuthzError) => void;
}

/**
 * Carries out a decision's audit obligations (its own and its batch entries'): resolves with the
 * decision itself once every record is on disk, or with a fail-closed deny (500,
 * `audit-unavailable`) when there is no audit log, an obligation is malformed, or the write fails.
 * A decision without audit obligations is returned as it is and nothing is written.
 */
export async function carryOutObligations(
  decision: Decision,
  auditLog: AuditLog | undefined,
  options: CarryOutOptions = {},
): Promise<Decision> {
  const obligations = auditObligations(decision);
  if (obligations.length === 0) return decision;
  const refuse = (error: SmartAuthzError): Decision => {
    options.onError?.(error);
    return auditUnavailable();
  };
  if (!auditLog) {
    return refuse(
      new SmartAuthzError(
        "AUDIT_WRITE_FAILED",
        "the decision must be audited but no audit log is configured",
      ),
    );
  }
  if (!obligations.every(isAuditObligation)) {
    return refuse(new SmartAuthzError("AUDIT_WRITE_FAILED", "an audit obligation carries no AuditEvent"));
  }
  try {
    await auditLog.append(
      obligations.map((o) => o.event),
      options.decisionId ?? randomUUID(),
    );
  } catch (err) {
    return refuse(
      err instanceof SmartAuthzError ? err : new SmartAuthzError("AUDIT_WRITE_FAILED", describeError(err)),
    );
  }
  return decision;
}

/** The fail-closed deny that replaces a decision whose audit record could not be written. */
export function auditUnavailable(): Decision {
  return failClosed(
    "audit-unavailable",
    "the audit record this access requires could not be written, so access is refused",
  );
}
