/**
 * Fetching what the service polls for changes (the policy bundle, data documents): a file, marked
 * by a stamp of its size, mtime and inode, or an HTTP(S) URL, asked with `If-None-Match`. Downloads
 * are size-bounded before and while they are read; every failure is a SmartAuthzError.
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { SmartAuthzError, describeError, type ErrorCode } from "../core/errors.js";

export interface UrlFetchOptions {
  /** What is fetched, for messages ("bundle", "relationships document"). */
  what: string;
  accept: string;
  timeoutMs: number;
  maxBytes: number;
  bearerToken?: string | undefined;
  /** The ETag of the copy in use: answered 304 → `undefined`. */
  ifNoneMatch?: string | undefined;
  /** The code of errors about the content (too large); unreachable servers are *_UNAVAILABLE. */
  invalidCode: ErrorCode;
  unavailableCode: ErrorCode;
}

export interface Downloaded {
  bytes: Uint8Array;
  etag: string | undefined;
}

/** GETs `url`: the bytes, or `undefined` when the server answers 304 Not Modified. */
export async function fetchBytes(url: string, o: UrlFetchOptions): Promise<Downloaded | undefined> {
  const shown = redactUrl(url);
  const headers: Record<string, string> = { accept: o.accept };
  if (o.bearerToken) headers.authorization = `Bearer ${o.bearerToken}`;
  if (o.ifNoneMatch) headers["if-none-match"] = o.ifNoneMatch;
  let response: Response;
  try {
    response = await fetch(url, { headers, redirect: "follow", signal: AbortSignal.timeout(o.timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new SmartAuthzError(
      o.unavailableCode,
      `cannot fetch ${o.what} from ${shown}: ${describeError(err)}${cause ? ` (${describeError(cause)})` : ""}`,
    );
  }
  if (response.status === 304) return undefined;
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new SmartAuthzError(
      o.unavailableCode,
      `${o.what} server ${shown} answered HTTP ${response.status}`,
    );
  }
  const tooLarge = (size: number) =>
    new SmartAuthzError(
      o.invalidCode,
      `${o.what} from ${shown} is too large (${size} bytes; limit ${o.maxBytes})`,
    );
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > o.maxBytes) {
    await response.body?.cancel();
    throw tooLarge(declared);
  }
  const bytes = await readBounded(response, o.maxBytes, tooLarge);
  return { bytes, etag: response.headers.get("etag") ?? undefined };
}

/** Reads a body, stopping as soon as it passes `maxBytes` (a missing or lying Content-Length). */
async function readBounded(
  response: Response,
  maxBytes: number,
  tooLarge: (size: number) => Error,
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(size);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A change marker for a file or directory: size, mtime and inode of the relevant files. */
export function fileStamp(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isDirectory()) return `${st.size}:${st.mtimeMs}:${st.ino}`;
    return readdirSync(path)
      .sort()
      .map((name) => {
        const s = statSync(join(path, name));
        return `${name}=${s.size}:${s.mtimeMs}:${s.ino}`;
      })
      .join(",");
  } catch {
    return undefined;
  }
}

/** A URL fit for logs and /status: credentials in it are masked. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = "***";
      u.password = "";
    }
    return u.toString();
  } catch {
    return url;
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
