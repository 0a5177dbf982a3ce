/** Typed errors with stable `code` fields that callers (CLI, HTTP layer, tests) can branch on. */
export type ErrorCode =
  | "BUNDLE_INVALID"
  | "BUNDLE_MISSING_BUILTIN"
  | "BUNDLE_SIGNATURE_INVALID"
  | "BUNDLE_UNAVAILABLE"
  | "POLICY_EVALUATION_FAILED"
  | "INPUT_INVALID"
  | "CONFIG_INVALID"
  | "DATA_INVALID"
  | "DATA_UNAVAILABLE"
  | "TOKEN_INVALID"
  | "AUDIT_WRITE_FAILED";

export class SmartAuthzError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "SmartAuthzError";
    this.code = code;
    this.details = details;
  }
}

/** A readable message for anything thrown, including the strings and plain objects opa-wasm throws. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  if (err && typeof err === "object" && "message" in err)
    return String((err as { message: unknown }).message);
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
