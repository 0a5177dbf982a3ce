/**
 * Where the policy comes from and how it changes: a bundle file/directory (polled for changes) or
 * an HTTP bundle server (polled with ETags), optionally verified against an OPA bundle signature
 * (`.signatures.json`). A new bundle is activated only when it downloads, verifies, loads and
 * instantiates; otherwise the last good engine keeps serving and the failure is reported.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { readBundle, readBundleBytes, type PolicyBundle } from "./bundle.js";
import type { BundleConfig, BundleVerificationConfig } from "../ops/config.js";
import { PolicyEngine } from "./engine.js";
import { BundleVerifier } from "./bundle-signature.js";
import { SmartAuthzError, describeError } from "../core/errors.js";

export interface BundleStatus {
  source: string;
  revision: string | undefined;
  loadedAt: string | undefined;
  etag: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  activations: number;
  failures: number;
}

export interface BundleListener {
  activated?(engine: PolicyEngine, previous: PolicyEngine | undefined): void;
  failed?(error: SmartAuthzError, keptRevision: string | undefined): void;
  unchanged?(): void;
}

const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;

export class BundleSource {
  private engine: PolicyEngine | undefined;
  private stamp: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;
  private verifier: BundleVerifier | undefined;
  /**
   * The last bundle that was rejected: its file stamp (files only) and the sha256 of its bytes.
   * Polls skip it until it changes, instead of decompressing and compiling it again (H-3).
   */
  private rejected: { stamp: string | undefined; digest: string } | undefined;
  private readonly listeners: BundleListener[] = [];
  private readonly state: BundleStatus;

  constructor(
    private readonly config: BundleConfig,
    private readonly policyData: Record<string, unknown>,
  ) {
    this.state = {
      source: config.source.kind === "url" ? redactUrl(config.source.url) : config.source.path,
      revision: undefined,
      loadedAt: undefined,
      etag: undefined,
      lastError: undefined,
      lastErrorAt: undefined,
      activations: 0,
      failures: 0,
    };
  }

  on(listener: BundleListener): void {
    this.listeners.push(listener);
  }

  /** The engine of the last good bundle, if one was ever activated. */
  get current(): PolicyEngine | undefined {
    return this.engine;
  }

  get status(): BundleStatus {
    return { ...this.state };
  }

  /** Loads the first bundle (resolving either way) and starts polling. Throws only on a bad verification key. */
  async start(): Promise<void> {
    if (this.config.verification) this.verifier = await BundleVerifier.create(this.config.verification);
    await this.reload(false);
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Fetches and activates the bundle. `force` ignores the ETag/file stamp (SIGHUP).
   * Resolves true when a new bundle was activated. Never rejects.
   */
  reload(force = true): Promise<boolean> {
    if (!this.inFlight) {
      this.inFlight = this.load(force).finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  private schedule(): void {
    if (this.config.pollIntervalMs <= 0) return;
    this.timer = setTimeout(() => {
      void this.reload(false).finally(() => {
        if (this.timer) this.schedule();
      });
    }, this.config.pollIntervalMs);
    this.timer.unref();
  }

  private async load(force: boolean): Promise<boolean> {
    try {
      const fetched = this.config.source.kind === "url" ? await this.fetchUrl(force) : this.readFile(force);
      if (!fetched || (!force && fetched.digest === this.rejected?.digest)) {
        if (fetched && this.rejected) this.rejected.stamp = fetched.stamp;
        for (const l of this.listeners) l.unchanged?.();
        return false;
      }
      let engine: PolicyEngine;
      try {
        const bundle = fetched.read();
        if (this.verifier) await this.verifier.verify(bundle.files, this.state.source);
        engine = await PolicyEngine.load(bundle, { data: { config: this.policyData } });
      } catch (err) {
        this.rejected = { stamp: fetched.stamp, digest: fetched.digest };
        throw err;
      }
      this.rejected = undefined;
      const previous = this.engine;
      this.engine = engine;
      this.stamp = fetched.stamp;
      this.state.revision = engine.revision;
      this.state.loadedAt = new Date().toISOString();
      this.state.etag = fetched.etag;
      this.state.lastError = undefined;
      this.state.lastErrorAt = undefined;
      this.state.activations++;
      for (const l of this.listeners) l.activated?.(engine, previous);
      return true;
    } catch (err) {
      const error =
        err instanceof SmartAuthzError ? err : new SmartAuthzError("BUNDLE_INVALID", describeError(err));
      this.state.lastError = error.message;
      this.state.lastErrorAt = new Date().toISOString();
      this.state.failures++;
      for (const l of this.listeners) l.failed?.(error, this.engine?.revision);
      return false;
    }
  }

  private readFile(force: boolean): Fetched | undefined {
    const path = (this.config.source as { path: string }).path;
    const stamp = fileStamp(path);
    if (!force && stamp !== undefined && stamp === this.stamp) return undefined;
    if (!force && stamp !== undefined && stamp === this.rejected?.stamp) return undefined;
    let bytes: Uint8Array | undefined;
    try {
      if (statSync(path).isFile()) bytes = readFileSync(path);
    } catch {
      // readBundle reports it
    }
    return {
      // A directory is identified by its stamp (names, sizes, mtimes, inodes of its files).
      digest: bytes ? sha256Hex(bytes) : `stamp:${stamp ?? ""}`,
      read: () => (bytes ? readBundleBytes(bytes, path) : readBundle(path)),
      stamp: stamp ?? "",
      etag: undefined,
    };
  }

  private async fetchUrl(force: boolean): Promise<Fetched | undefined> {
    const url = (this.config.source as { url: string }).url;
    const headers: Record<string, string> = { accept: "application/gzip, application/octet-stream" };
    if (this.config.bearerToken) headers.authorization = `Bearer ${this.config.bearerToken}`;
    if (!force && this.stamp && this.engine) headers["if-none-match"] = this.stamp;
    let response: Response;
    try {
      response = await fetch(url, {
        headers,
        redirect: "follow",
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      throw new SmartAuthzError(
        "BUNDLE_UNAVAILABLE",
        `cannot fetch bundle from ${this.state.source}: ${describeError(err)}${cause ? ` (${describeError(cause)})` : ""}`,
      );
    }
    if (response.status === 304) return undefined;
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new SmartAuthzError(
        "BUNDLE_UNAVAILABLE",
        `bundle server ${this.state.source} answered HTTP ${response.status}`,
      );
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > MAX_DOWNLOAD_BYTES) {
      await response.body?.cancel();
      throw new SmartAuthzError(
        "BUNDLE_INVALID",
        `bundle from ${this.state.source} is too large (${declared} bytes)`,
      );
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_DOWNLOAD_BYTES) {
      throw new SmartAuthzError(
        "BUNDLE_INVALID",
        `bundle from ${this.state.source} is too large (${bytes.length} bytes)`,
      );
    }
    const etag = response.headers.get("etag") ?? undefined;
    const digest = sha256Hex(bytes);
    const origin = this.state.source;
    return { digest, read: () => readBundleBytes(bytes, origin), stamp: etag ?? digest, etag };
  }
}

/** A bundle that may be new: its bytes' digest, and how to unpack it (only when it is tried). */
interface Fetched {
  digest: string;
  read(): PolicyBundle;
  stamp: string;
  etag: string | undefined;
}

/** A change marker for a bundle file or directory: size, mtime and inode of the relevant files. */
function fileStamp(path: string): string | undefined {
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

function redactUrl(url: string): string {
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

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
