/**
 * Data documents beside the bundle (relationships, client registrations): loaded from a file or a
 * URL, size-bounded, validated against their JSON Schema, hot-reloaded, the last good copy kept;
 * and the policy decides with the new copy without a restart.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { main } from "../src/cli.js";
import { DATA_DOCUMENT_NAMES, type DataDocumentConfig } from "../src/ops/config.js";
import { DataDocumentSource, compileSchema, type DataDocumentName } from "../src/policy/data-document.js";
import { startService, type Service } from "../src/server.js";
import { buildFixtureBundle, tempDir } from "./helpers/fixtures.js";
import { bundlePath } from "./helpers/policy.js";
import { serviceConfig } from "./helpers/service-config.js";

const GOOD = { version: 1, users: { "Practitioner/p1": { patients: ["123"], groups: ["CareTeam/ct1"] } } };
const GOOD2 = { users: { "Practitioner/p1": { patients: ["123", "999"] } }, groups: {} };

function fileConfig(path: string, extra: Partial<DataDocumentConfig> = {}): DataDocumentConfig {
  return {
    source: { kind: "file", path },
    pollIntervalMs: 0,
    timeoutMs: 1000,
    maxBytes: 1024 * 1024,
    bearerToken: undefined,
    ...extra,
  };
}

function recorder() {
  const changes: unknown[] = [];
  const failures: string[] = [];
  return {
    changes,
    failures,
    listener: {
      changed: (_n: DataDocumentName, v: unknown) => changes.push(v),
      failed: (_n: DataDocumentName, e: Error) => failures.push(e.message),
    },
  };
}

function touch(path: string, content: unknown): void {
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  const t = new Date(Date.now() + Math.random() * 100_000);
  utimesSync(path, t, t);
}

describe("data document schemas", () => {
  it("has a schema for every document a config may name", () => {
    for (const name of DATA_DOCUMENT_NAMES) expect(() => compileSchema(name)).not.toThrow();
  });

  it("accepts the documented examples and refuses wrong shapes", () => {
    const relationships = compileSchema("relationships");
    expect(relationships(GOOD)).toBe(true);
    expect(relationships({ users: { "Practitioner/p1": { patients: [123] } } })).toBe(false);
    expect(relationships({ users: { "Observation/o1": {} } })).toBe(false);
    expect(relationships({ users: {}, extra: true })).toBe(false);
    expect(relationships({ users: { "Practitioner/p1": { patients: ["a b"] } } })).toBe(false);
    const clients = compileSchema("clients");
    expect(clients({ clients: { app: { scopes: ["patient/*.rs"], scope_syntax: "v2" } } })).toBe(true);
    expect(clients({ clients: { app: { scopes: ["bad scope"] } } })).toBe(false);
    expect(clients({ clients: { app: {} } })).toBe(false);
  });
});

describe("DataDocumentSource (file)", () => {
  const dir = tempDir("data-doc-");

  it("loads, keeps the last good copy when the next is invalid, and takes the next good one", async () => {
    const path = join(dir, "relationships.json");
    touch(path, GOOD);
    const r = recorder();
    const source = new DataDocumentSource("relationships", fileConfig(path), r.listener);
    await source.start();
    expect(source.current).toEqual(GOOD);
    expect(r.changes).toEqual([GOOD]);

    touch(path, "{ not json");
    expect(await source.reload(false)).toBe(false);
    expect(source.current).toEqual(GOOD);
    expect(r.failures.at(-1)).toMatch(/relationships document .* is not valid JSON/);

    touch(path, { users: { "Practitioner/p1": { patients: [1] } } });
    expect(await source.reload(false)).toBe(false);
    expect(r.failures.at(-1)).toMatch(/does not match schemas\/data\/relationships.schema.json: \/users/);
    expect(source.status).toMatchObject({ failures: 2, activations: 1 });

    touch(path, GOOD2);
    expect(await source.reload(false)).toBe(true);
    expect(source.current).toEqual(GOOD2);
    expect(source.status.lastError).toBeUndefined();
    expect(await source.reload(false)).toBe(false); // unchanged file: nothing to do
  });

  it("refuses a file over the size bound and reports a missing one", async () => {
    const path = join(dir, "big.json");
    touch(path, {
      users: { "Practitioner/p1": { patients: Array.from({ length: 200 }, (_, i) => `p${i}`) } },
    });
    const r = recorder();
    const source = new DataDocumentSource("relationships", fileConfig(path, { maxBytes: 256 }), r.listener);
    await source.start();
    expect(source.current).toBeUndefined();
    expect(r.failures[0]).toMatch(/too large/);
    const missing = new DataDocumentSource("relationships", fileConfig(join(dir, "none.json")), r.listener);
    await missing.start();
    expect(r.failures.at(-1)).toMatch(/relationships document not found/);
  });
});

describe("DataDocumentSource (URL)", () => {
  let server: Server;
  let url: string;
  let body = JSON.stringify(GOOD);
  let etag = '"v1"';
  const seen: { auth?: string | undefined; ifNoneMatch?: string | undefined }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, ifNoneMatch: req.headers["if-none-match"] as string });
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304).end();
        return;
      }
      if (req.url === "/chunked") {
        res.writeHead(200, { etag, "content-type": "application/json" });
        res.write(body);
        res.end(" ".repeat(4096));
        return;
      }
      res.writeHead(200, { etag, "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("polls with If-None-Match and the bearer token, and activates a changed document", async () => {
    const r = recorder();
    const config: DataDocumentConfig = {
      ...fileConfig(""),
      source: { kind: "url", url: `${url}/relationships.json` },
      bearerToken: "secret",
    };
    const source = new DataDocumentSource("relationships", config, r.listener);
    await source.start();
    expect(source.current).toEqual(GOOD);
    expect(await source.reload(false)).toBe(false);
    expect(seen.at(-1)).toEqual({ auth: "Bearer secret", ifNoneMatch: '"v1"' });
    body = JSON.stringify(GOOD2);
    etag = '"v2"';
    expect(await source.reload(false)).toBe(true);
    expect(source.current).toEqual(GOOD2);
  });

  it("stops reading a body that grows past the bound without a Content-Length", async () => {
    const r = recorder();
    const config: DataDocumentConfig = {
      ...fileConfig(""),
      source: { kind: "url", url: `${url}/chunked` },
      maxBytes: 1024,
    };
    etag = '"v3"';
    const source = new DataDocumentSource("relationships", config, r.listener);
    await source.start();
    expect(source.current).toBeUndefined();
    expect(r.failures[0]).toMatch(/too large/);
  });
});

describe("the service decides with the data document, and takes a new copy without a restart", () => {
  let service: Service | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  it("passes data.relationships to the policy and reloads it", async () => {
    const dir = tempDir("data-svc-");
    const path = join(dir, "relationships.json");
    touch(path, GOOD);
    const config = serviceConfig(dir, {
      bundle: buildFixtureBundle("rev-data"),
      data: { relationships: { source: "relationships.json", poll_interval_seconds: 0 } },
    });
    service = await startService(config, { defaultMetrics: false });
    let token = "";
    await main(["token", "--scope", "patient/Observation.rs", "--patient", "123"], {
      stdout: (t) => (token += t),
      stderr: () => {},
      stdin: () => "",
      env: {},
    });
    const ask = async () => {
      const res = await fetch(`${service!.url}/v1/decision`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: token.trim(), request: { method: "GET", url: "Relationships" } }),
      });
      return ((await res.json()) as { relationships: unknown }).relationships;
    };
    expect(await ask()).toEqual(GOOD);
    touch(path, GOOD2);
    expect(await service.documents[0]!.reload(false)).toBe(true); // the bundle did not change
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && JSON.stringify(await ask()) !== JSON.stringify(GOOD2)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await ask()).toEqual(GOOD2);
    const status = (await (await fetch(`${service.url}/status`)).json()) as { data: Record<string, unknown> };
    expect(status.data.relationships).toMatchObject({ source: path, activations: 2, failures: 0 });
  });

  it("decides user/ access with the real policy, and a changed relationships document applies without a restart", async () => {
    const dir = tempDir("data-real-");
    const path = join(dir, "relationships.json");
    touch(path, { users: { "Practitioner/p1": { patients: ["123"] } } });
    const config = serviceConfig(dir, {
      bundle: bundlePath,
      data: { relationships: { source: "relationships.json", poll_interval_seconds: 0 } },
    });
    service = await startService(config, { defaultMetrics: false });
    let token = "";
    await main(["token", "--scope", "user/Observation.rs", "--fhir-user", "Practitioner/p1"], {
      stdout: (t) => (token += t),
      stderr: () => {},
      stdin: () => "",
      env: {},
    });
    const observationOf = (patient: string) => ({
      resourceType: "Observation",
      id: "o1",
      status: "final",
      code: { text: "x" },
      subject: { reference: `Patient/${patient}` },
    });
    const ask = async (patient: string) => {
      const res = await fetch(`${service!.url}/v1/decision`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          token: token.trim(),
          request: { method: "GET", url: "Observation/o1" },
          resource: observationOf(patient),
        }),
      });
      return ((await res.json()) as { decision: string }).decision;
    };
    expect(await ask("123")).toBe("allow");
    expect(await ask("999")).toBe("deny");
    touch(path, { users: { "Practitioner/p1": { patients: ["999"] } } });
    expect(await service.documents[0]!.reload(false)).toBe(true);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await ask("999")) !== "allow")
      await new Promise((r) => setTimeout(r, 20));
    expect(await ask("999")).toBe("allow");
    expect(await ask("123")).toBe("deny");
  });

  it("refuses an unknown document name in the config", () => {
    const dir = tempDir("data-cfg-");
    expect(() =>
      serviceConfig(dir, { bundle: "b.tar.gz", data: { patients: { source: "x.json" } } }),
    ).toThrow(/data.patients: unknown field; expected one of relationships, clients/);
  });
});
