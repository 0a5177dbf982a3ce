/**
 * What the FHIR server can do, from its CapabilityStatement (`GET [base]/metadata`), fetched at
 * start and again every `proxy.upstream.capability_refresh_seconds`: which types accept `_filter`
 * and which compartments it searches. The narrowing strategy `auto` chooses by it.
 */
import type { Logger } from "../ops/logging.js";
import type { ServerFeatures } from "./narrowing.js";
import type { ClientInfo, UpstreamClient } from "./upstream.js";
import { describeError } from "../core/errors.js";

/** The features a CapabilityStatement announces. */
export function featuresOf(capabilityStatement: unknown): ServerFeatures | string {
  const cs = capabilityStatement as { resourceType?: unknown; rest?: unknown };
  if (typeof cs !== "object" || cs === null || cs.resourceType !== "CapabilityStatement")
    return "the server's metadata is not a CapabilityStatement";
  const rest = Array.isArray(cs.rest) ? (cs.rest as Record<string, unknown>[]) : [];
  const server = rest.find((r) => r?.mode === "server") ?? rest[0];
  const filter = new Set<string>();
  const compartments = new Set<string>();
  if (!server) return { filter, compartments };
  const named = (list: unknown, name: string) =>
    Array.isArray(list) && list.some((p) => (p as { name?: unknown } | null)?.name === name);
  if (named(server.searchParam, "_filter")) filter.add("*");
  for (const r of Array.isArray(server.resource) ? (server.resource as Record<string, unknown>[]) : []) {
    if (typeof r?.type === "string" && named(r.searchParam, "_filter")) filter.add(r.type);
  }
  for (const c of Array.isArray(server.compartment) ? (server.compartment as unknown[]) : []) {
    const m = typeof c === "string" ? /\/CompartmentDefinition\/([A-Za-z]+)$/.exec(c) : null;
    if (m) compartments.add(m[1]!.charAt(0).toUpperCase() + m[1]!.slice(1));
  }
  return { filter, compartments };
}

export class CapabilityWatcher {
  private features: ServerFeatures | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastAttempt = 0;
  private inflight: Promise<void> | undefined;
  lastError: string | undefined;

  constructor(
    private readonly upstream: UpstreamClient,
    private readonly refreshMs: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The server's features, or undefined while they are not known. */
  current(): ServerFeatures | undefined {
    // While unknown, ask again (at most every 5 s) so a server that came up late is picked up.
    if (!this.features && this.now() - this.lastAttempt > 5000) void this.refresh();
    return this.features;
  }

  /**
   * Reads the CapabilityStatement once more when it is not known yet (the server was busy or came
   * up after the proxy), so a narrowed search waits for it instead of failing; at most one read a
   * second while the server does not answer.
   */
  async ensureKnown(): Promise<void> {
    if (this.features) return;
    if (this.inflight) return this.inflight;
    if (this.now() - this.lastAttempt >= 1000) await this.refresh();
  }

  async start(): Promise<void> {
    await this.refresh();
    if (this.refreshMs > 0) {
      this.timer = setInterval(() => void this.refresh(), this.refreshMs);
      this.timer.unref();
    }
  }

  refresh(): Promise<void> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async fetch(): Promise<void> {
    this.lastAttempt = this.now();
    const client: ClientInfo = {
      requestId: "capabilities",
      forwardedFor: "",
      forwardedProto: "http",
      forwardedHost: "",
    };
    try {
      const res = await this.upstream.request({ method: "GET", target: "metadata", client });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const features = featuresOf(res.json);
      if (typeof features === "string") throw new Error(features);
      const changed = JSON.stringify(summary(features)) !== JSON.stringify(summary(this.features));
      this.features = features;
      this.lastError = undefined;
      if (changed)
        this.logger.info({ upstream_features: summary(features) }, "FHIR server capabilities read");
    } catch (err) {
      this.lastError = describeError(err);
      this.logger.warn(
        { error: this.lastError, known: this.features !== undefined },
        "the FHIR server's CapabilityStatement could not be read",
      );
    }
  }
}

function summary(f: ServerFeatures | undefined) {
  return f ? { filter: [...f.filter].sort(), compartments: [...f.compartments].sort() } : null;
}
