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
import { Poller, newLoadRecord, recordActivation, recordFailure, type LoadRecord } from "./polled-source.js";
import type { SmartAuthzError } from "../core/errors.js";

export interface BundleStatus extends LoadRecord {
  revision: string | undefined;
  etag: string | undefined;
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
  private readonly poller: Poller;
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
    const source = config.source.kind === "url" ? redactUrl(config.source.url) : config.source.path;
    this.state = { ...newLoadRecord(source), revision: undefined, etag: undefined };
    this.poller = new Poller(config.pollIntervalMs, (force) => this.load(force));
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
    await this.poller.start();
  }

  stop(): void {
    this.poller.stop();
  }

  /**
   * Fetches and activates the bundle. `force` ignores the ETag/file stamp (SIGHUP).
   * Resolves true when a new bundle was activated. Never rejects.
   */
  reload(force = true): Promise<boolean> {
    return this.poller.reload(force);
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
      this.state.etag = fetched.etag;
      recordActivation(this.state);
      for (const l of this.listeners) l.activated?.(engine, previous);
      return true;
    } catch (err) {
      const error = recordFailure(this.state, err, "BUNDLE_INVALID");
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
