/**
 * Addresses in what the client receives point at the proxy, never at the FHIR server behind it:
 * `fullUrl`, batch `response.location`, the `Location` and `Content-Location` headers, the
 * CapabilityStatement's `implementation.url`; a Bundle's id (HAPI's names its stored search) is
 * replaced. Paging links become signed cursors (cursor.ts); a
 * link that does not point into the FHIR server's base is dropped rather than passed on.
 */
import { randomUUID } from "node:crypto";
import type { CursorPayload, CursorSigner } from "./cursor.js";
import { PAGE_PATH } from "./interaction.js";
import { isObject } from "./release.js";

export class UrlMap {
  constructor(
    /** The FHIR server's base URL, no trailing slash. */
    readonly upstreamBase: string,
    /** The proxy's public base URL, no trailing slash. */
    readonly publicBase: string,
  ) {}

  /** The target relative to the FHIR server's base ("Observation?x", "?_getpages=…", "") of an absolute URL into it. */
  upstreamTarget(url: string): string | undefined {
    for (const base of [this.upstreamBase, this.publicBase]) {
      if (url === base) return "";
      if (url.startsWith(`${base}/`)) return url.slice(base.length + 1);
      if (url.startsWith(`${base}?`)) return url.slice(base.length);
    }
    // A relative link is relative to the base (a host-relative "/…" is not).
    if (!/^[a-z][a-z0-9+.-]*:/i.test(url) && !url.startsWith("/") && !url.startsWith("\\")) return url;
    return undefined;
  }

  /** An absolute URL into the FHIR server as the same URL on the proxy; anything else unchanged. */
  toPublic(url: string): string {
    const b = this.upstreamBase;
    if (url === b) return this.publicBase;
    if (url.startsWith(`${b}/`) || url.startsWith(`${b}?`)) return this.publicBase + url.slice(b.length);
    return url;
  }

  /** The public URL of a target relative to the base. */
  publicUrl(target: string): string {
    if (target === "") return this.publicBase;
    return target.startsWith("?") ? `${this.publicBase}${target}` : `${this.publicBase}/${target}`;
  }
}

/** What a cursor for this search carries besides the page address. */
export type PageBinding = Omit<CursorPayload, "page" | "expires">;

/**
 * The Bundle's addresses rewritten for the client: `fullUrl` and `response.location` of every
 * entry, and its paging links: `self` is `selfUrl`, every other relation a cursor (or dropped).
 * Nested Bundles (batch responses) are rewritten by their own caller.
 */
export function rewriteBundle(
  bundle: Record<string, unknown>,
  urls: UrlMap,
  paging: { signer: CursorSigner; binding: PageBinding; selfUrl: string } | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...bundle };
  // The server's Bundle id can name its stored search (HAPI: the `_getpages` id): a fresh one.
  if (bundle.id !== undefined) out.id = randomUUID();
  if (Array.isArray(bundle.entry)) {
    out.entry = (bundle.entry as unknown[]).map((e) => {
      if (!isObject(e)) return e;
      const entry: Record<string, unknown> = { ...e };
      if (typeof e.fullUrl === "string") entry.fullUrl = urls.toPublic(e.fullUrl);
      if (isObject(e.response) && typeof e.response.location === "string")
        entry.response = { ...e.response, location: urls.toPublic(e.response.location) };
      return entry;
    });
  }
  if (Array.isArray(bundle.link)) {
    const links: Record<string, unknown>[] = [];
    for (const l of bundle.link as unknown[]) {
      if (!isObject(l) || typeof l.relation !== "string" || typeof l.url !== "string") continue;
      if (l.relation === "self") {
        if (paging) links.push({ ...l, url: paging.selfUrl });
        continue;
      }
      const target = urls.upstreamTarget(l.url);
      if (!paging || target === undefined) continue;
      const cursor = paging.signer.seal({ ...paging.binding, page: target });
      links.push({ ...l, url: `${urls.publicBase}/${PAGE_PATH}?cursor=${cursor}` });
    }
    if (links.length > 0) out.link = links;
    else delete out.link;
  }
  return out;
}

/** A CapabilityStatement as the proxy's own: its implementation is the proxy's public base. */
export function rewriteCapabilityStatement(
  cs: Record<string, unknown>,
  urls: UrlMap,
): Record<string, unknown> {
  const implementation = isObject(cs.implementation) ? cs.implementation : {};
  return {
    ...cs,
    implementation: {
      description: "FHIR server behind the smart-authz enforcing proxy",
      ...implementation,
      url: urls.publicBase,
    },
  };
}

/** A Location / Content-Location header value for the client. */
export function rewriteLocation(value: string | string[] | undefined, urls: UrlMap): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === "") return undefined;
  return urls.toPublic(v);
}
