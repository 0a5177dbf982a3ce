/**
 * Paging cursors: the proxy never hands a client the FHIR server's paging URL (`_getpages`,
 * `_getpagesoffset`, …). A `next`/`prev`/… link becomes `<public base>/_page?cursor=<opaque>`, where
 * the cursor is the server's page address (relative to its base), the client's original request
 * (to decide again on every page), who may follow it and until when, signed with HMAC-SHA256.
 * A cursor that was changed, belongs to another token subject/client/patient or has expired is refused.
 * It is opaque: encrypted as well as authenticated, so a client learns neither the server's paging
 * address (HAPI's `_getpages` id names the stored search, whose pages are unfiltered) nor the
 * narrowing the proxy applied.
 *
 * Format: base64url(IV ‖ AES-256-GCM(JSON payload)) "." base64url(GCM tag), with the key
 * SHA-256("smart-authz-cursor.v2." ‖ configured key) and the context string as associated data.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

export interface CursorPayload {
  /** The server's page, relative to the upstream base ("?_getpages=…", "Observation?…"). */
  page: string;
  /**
   * The narrowed search sent to the server (relative to its base) when it was a `_filter` search:
   * used to check whether a full last page really was the last (search.ts).
   */
  search?: string;
  /** The client's original request, decided again for every page. */
  request: { method: string; url: string; body?: string };
  /** The binding to the token's issuer, subject, client and patient (see `bindingOf`). */
  binding: string;
  /** A fingerprint of the original decision's narrowing: a token with other rights must restart. */
  narrow: string;
  /** Expiry, Unix milliseconds. */
  expires: number;
}

export type CursorFailure = { reason: "malformed" | "forged" | "expired" | "other-token"; message: string };

/** Largest cursor accepted (a URL holds it). */
export const MAX_CURSOR_LENGTH = 12_000;

const CONTEXT = "smart-authz-cursor.v2.";
const IV_BYTES = 12;

export class CursorSigner {
  /** True when the key was generated at start (cursors do not survive a restart or cross replicas). */
  readonly ephemeral: boolean;
  private readonly key: Buffer;

  constructor(
    key: string | undefined,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ephemeral = key === undefined;
    this.key =
      key === undefined ? randomBytes(32) : createHash("sha256").update(CONTEXT).update(key, "utf8").digest();
  }

  seal(payload: Omit<CursorPayload, "expires">): string {
    const full: CursorPayload = { ...payload, expires: this.now() + this.ttlMs };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(CONTEXT, "utf8"));
    const sealed = Buffer.concat([iv, cipher.update(JSON.stringify(full), "utf8"), cipher.final()]);
    return `${sealed.toString("base64url")}.${cipher.getAuthTag().toString("base64url")}`;
  }

  /** The payload of a genuine, unexpired cursor bound to `binding`, or why not. */
  open(cursor: string, binding: string): CursorPayload | CursorFailure {
    if (
      cursor.length === 0 ||
      cursor.length > MAX_CURSOR_LENGTH ||
      !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(cursor)
    )
      return { reason: "malformed", message: "the paging cursor is malformed" };
    const [body, tag] = cursor.split(".") as [string, string];
    const sealed = Buffer.from(body, "base64url");
    const mac = Buffer.from(tag, "base64url");
    if (sealed.length <= IV_BYTES || mac.length !== 16)
      return { reason: "malformed", message: "the paging cursor is malformed" };
    let text: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, sealed.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(CONTEXT, "utf8"));
      decipher.setAuthTag(mac);
      text = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      return {
        reason: "forged",
        message:
          "the paging cursor was not issued by this proxy (or the proxy restarted without a configured cursor key)",
      };
    }
    let payload: CursorPayload;
    try {
      payload = JSON.parse(text) as CursorPayload;
    } catch {
      return { reason: "malformed", message: "the paging cursor is malformed" };
    }
    if (
      typeof payload?.page !== "string" ||
      typeof payload.binding !== "string" ||
      typeof payload.narrow !== "string" ||
      typeof payload.expires !== "number" ||
      typeof payload.request?.method !== "string" ||
      typeof payload.request.url !== "string"
    )
      return { reason: "malformed", message: "the paging cursor is malformed" };
    if (payload.expires <= this.now())
      return { reason: "expired", message: "the paging cursor has expired: run the search again" };
    if (payload.binding !== binding)
      return {
        reason: "other-token",
        message: "the paging cursor belongs to another user, client or patient",
      };
    return payload;
  }
}

/** Who may follow a cursor: the token's issuer, subject, client and patient context. */
export function bindingOf(claims: Record<string, unknown>): string {
  const pick = (k: string) => (typeof claims[k] === "string" ? (claims[k] as string) : null);
  return digest([
    pick("iss"),
    pick("sub"),
    pick("client_id") ?? pick("azp"),
    pick("patient"),
    pick("fhirUser"),
  ]);
}

/** A stable fingerprint of a decision's narrowing (order of alternatives and keys ignored). */
export function narrowFingerprint(narrow: unknown): string {
  if (!Array.isArray(narrow)) return digest(null);
  const alts = (narrow as unknown[]).map((a) =>
    typeof a === "object" && a !== null ? JSON.stringify(Object.entries(a).sort()) : JSON.stringify(a),
  );
  return digest(alts.sort());
}

function digest(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("base64url").slice(0, 22);
}
