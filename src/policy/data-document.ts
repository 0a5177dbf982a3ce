/**
 * Data documents the policy decides with, beside its bundle: who is related to which patients
 * (`relationships`), which scopes a client is registered for (`clients`). Each is a JSON file or
 * URL, polled like the bundle (file stamp or ETag), size-bounded, and validated against its JSON
 * Schema (schemas/data/<name>.schema.json) before it replaces the last good copy. A document that
 * fails keeps the last good one serving; one that never loaded is absent, and the policy then
 * relates nobody to anybody (its secure default).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { SmartAuthzError, describeError } from "../core/errors.js";
import { DATA_DOCUMENT_NAMES, type DataDocumentConfig } from "../ops/config.js";
import { PACKAGE_ROOT } from "../ops/default-config.js";
import { fetchBytes, fileStamp, redactUrl, sha256Hex } from "./polled-fetch.js";
import { Poller, newLoadRecord, recordActivation, recordFailure, type LoadRecord } from "./polled-source.js";

/** The documents the policy knows, each at `data.<name>`. */
export const DATA_DOCUMENTS = DATA_DOCUMENT_NAMES;
export type DataDocumentName = (typeof DATA_DOCUMENTS)[number];

export interface DataDocumentStatus extends LoadRecord {
  digest: string | undefined;
}

export interface DataDocumentListener {
  changed(name: DataDocumentName, value: unknown): void;
  failed?(name: DataDocumentName, error: SmartAuthzError): void;
}

export class DataDocumentSource {
  private value: unknown;
  private stamp: string | undefined;
  private rejectedDigest: string | undefined;
  private readonly poller: Poller;
  private readonly validate: ValidateFunction;
  private readonly state: DataDocumentStatus;

  constructor(
    readonly name: DataDocumentName,
    private readonly config: DataDocumentConfig,
    private readonly listener: DataDocumentListener,
  ) {
    this.validate = compileSchema(name);
    const source = config.source.kind === "url" ? redactUrl(config.source.url) : config.source.path;
    this.state = { ...newLoadRecord(source), digest: undefined };
    this.poller = new Poller(config.pollIntervalMs, (force) => this.load(force));
  }

  /** The last good copy, or undefined when none ever loaded. */
  get current(): unknown {
    return this.value;
  }

  get status(): DataDocumentStatus {
    return { ...this.state };
  }

  /** Loads the first copy (resolving either way) and starts polling. */
  start(): Promise<void> {
    return this.poller.start();
  }

  stop(): void {
    this.poller.stop();
  }

  /** Fetches, validates and activates the document; resolves true when a new copy was activated. Never rejects. */
  reload(force = true): Promise<boolean> {
    return this.poller.reload(force);
  }

  private async load(force: boolean): Promise<boolean> {
    try {
      const fetched = await this.fetch(force);
      if (!fetched) return false;
      const digest = sha256Hex(fetched.bytes);
      if (!force && (digest === this.state.digest || digest === this.rejectedDigest)) {
        this.stamp = fetched.stamp;
        return false;
      }
      let value: unknown;
      try {
        value = this.parse(fetched.bytes);
      } catch (err) {
        this.rejectedDigest = digest;
        throw err;
      }
      this.rejectedDigest = undefined;
      this.value = value;
      this.stamp = fetched.stamp;
      this.state.digest = digest;
      recordActivation(this.state);
      this.listener.changed(this.name, value);
      return true;
    } catch (err) {
      const error = recordFailure(this.state, err, "DATA_INVALID");
      this.listener.failed?.(this.name, error);
      return false;
    }
  }

  private async fetch(force: boolean): Promise<{ bytes: Uint8Array; stamp: string } | undefined> {
    const { source } = this.config;
    if (source.kind === "url") {
      const downloaded = await fetchBytes(source.url, {
        what: `${this.name} document`,
        accept: "application/json",
        timeoutMs: this.config.timeoutMs,
        maxBytes: this.config.maxBytes,
        bearerToken: this.config.bearerToken,
        ifNoneMatch: !force && this.value !== undefined ? this.stamp : undefined,
        invalidCode: "DATA_INVALID",
        unavailableCode: "DATA_UNAVAILABLE",
      });
      if (!downloaded) return undefined;
      return { bytes: downloaded.bytes, stamp: downloaded.etag ?? sha256Hex(downloaded.bytes) };
    }
    const stamp = fileStamp(source.path);
    if (stamp === undefined) {
      throw new SmartAuthzError("DATA_UNAVAILABLE", `${this.name} document not found: ${source.path}`);
    }
    if (!force && stamp === this.stamp) return undefined;
    const size = statSync(source.path).size;
    if (size > this.config.maxBytes) {
      throw new SmartAuthzError(
        "DATA_INVALID",
        `${this.name} document ${source.path} is too large (${size} bytes; limit ${this.config.maxBytes})`,
      );
    }
    return { bytes: readFileSync(source.path), stamp };
  }

  private parse(bytes: Uint8Array): unknown {
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (err) {
      throw new SmartAuthzError(
        "DATA_INVALID",
        `${this.name} document from ${this.state.source} is not valid JSON: ${describeError(err)}`,
      );
    }
    if (!this.validate(value)) {
      const problems = (this.validate.errors ?? [])
        .slice(0, 5)
        .map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`)
        .join("; ");
      throw new SmartAuthzError(
        "DATA_INVALID",
        `${this.name} document from ${this.state.source} does not match schemas/data/${this.name}.schema.json: ${problems}`,
      );
    }
    return value;
  }
}

/** The JSON Schema of a data document, compiled once (strict: unknown keywords are a programming error). */
export function compileSchema(name: DataDocumentName): ValidateFunction {
  const file = join(PACKAGE_ROOT, "schemas", "data", `${name}.schema.json`);
  const schema = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  return new Ajv2020({ allErrors: true, strict: true }).compile(schema);
}
