/**
 * Where the policy comes from and how it changes: a bundle file/directory (polled for changes) or
 * an HTTP bundle server (polled with ETags), optionally verified against an OPA bundle signature
 * (`.signatures.json`). A new bundle is activated only when it downloads, verifies, loads and
 * instantiates; otherwise the last good engine keeps serving and the failure is reported.
 */
import { readFileSync, statSync } from "node:fs";
import { readBundle, readBundleBytes, type PolicyBundle } from "./bundle.js";
import type { BundleConfig, BundleVerificationConfig } from "../ops/config.js";
import { PolicyEngine } from "./engine.js";
import { BundleVerifier } from "./bundle-signature.js";
import { fetchBytes, fileStamp, redactUrl, sha256Hex } from "./polled-fetch.js";
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

/** The largest bundle download (also what `check-config --fetch` allows). */
export const MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024;

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
  /** The last good bundle, kept to rebuild its engine when a data document changes. */
  private bundle: PolicyBundle | undefined;
  /** Data documents (src/policy/data-document.ts) merged into the policy's data beside `config`. */
  private readonly documents = new Map<string, unknown>();

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
        engine = await PolicyEngine.load(bundle, { data: this.data() });
        this.bundle = bundle;
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

  /**
   * Sets (or, with `undefined`, removes) a data document and, when a bundle is active, activates
   * its engine again with the new data (the compiled module is reused). Resolves when it is active.
   */
  async setDocument(name: string, value: unknown): Promise<void> {
    if (value === undefined) this.documents.delete(name);
    else this.documents.set(name, value);
    const bundle = this.bundle;
    const previous = this.engine;
    if (!bundle || !previous) return;
    const engine = await PolicyEngine.load(bundle, { data: this.data() }, previous.module);
    this.engine = engine;
    this.state.activations++;
    for (const l of this.listeners) l.activated?.(engine, previous);
  }

  private data(): Record<string, unknown> {
    return { ...Object.fromEntries(this.documents), config: this.policyData };
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
    const downloaded = await fetchBytes(url, {
      what: "bundle",
      accept: "application/gzip, application/octet-stream",
      timeoutMs: this.config.timeoutMs,
      maxBytes: MAX_DOWNLOAD_BYTES,
      bearerToken: this.config.bearerToken,
      ifNoneMatch: !force && this.stamp && this.engine ? this.stamp : undefined,
      invalidCode: "BUNDLE_INVALID",
      unavailableCode: "BUNDLE_UNAVAILABLE",
    });
    if (!downloaded) return undefined;
    const { bytes, etag } = downloaded;
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
