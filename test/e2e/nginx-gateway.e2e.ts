/**
 * The NGINX gateway example (examples/nginx/) for real: NGINX from Debian with auth_request, the
 * sidecar built from this repository (`node dist/src/cli.js serve --config
 * examples/nginx/smart-authz.yaml`), and HAPI FHIR with the e2e data set. What a status-only
 * gateway forwards, what it refuses, and that every refusal reaches the client as the sidecar's own
 * status with its FHIR OperationOutcome and one WWW-Authenticate, never NGINX's HTML page; that a
 * refused request never reaches HAPI (NGINX's access log names the upstream that answered); that
 * refused writes leave HAPI unchanged; and that the gateway fails closed when the sidecar is down.
 *
 * Needs HAPI with the data set loaded and `nginx` on PATH: `make e2e` does it all.
 * Environment: FHIR_BASE (required), E2E_DATA (default build/e2e/data), E2E_BUNDLE (the policy
 * bundle the sidecar loads; default the config's, build/bundle.tar.gz), NGINX (the binary).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fhirGet, type Bundle, type OperationOutcome } from "./support/fhir-client.js";
import { freePort, sleep, startProcess, stopProcess, tail, type Started } from "./support/processes.js";
import { demoToken } from "./support/tokens.js";
import { loadTruth } from "./support/truth.js";

const base = process.env.FHIR_BASE?.replace(/\/+$/, "");
if (!base)
  throw new Error("FHIR_BASE is not set: run `make e2e` (or set it to a running HAPI with the data set)");
const fhir = new URL(base);
if (fhir.pathname !== "/fhir")
  throw new Error(`FHIR_BASE must end in /fhir (the example's base), got ${base}`);
const { truth } = loadTruth(process.env.E2E_DATA ?? "build/e2e/data");
const NGINX = process.env.NGINX ?? "nginx";
const SIDECAR_CONFIG = resolve("examples/nginx/smart-authz.yaml");
const FHIR_JSON = /^application\/fhir\+json/;
const HAPI = "HAPI FHIR";

let sidecar: Started | undefined;
let nginx: Started | undefined;
let sidecarAddr = "";
let gatewayPort = 0;
let runDir = "";

interface Reply {
  status: number;
  /** Every header line as received (duplicates kept), names in lower case. */
  headers: [string, string][];
  text: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- FHIR JSON, checked field by field
  requestId: string;
}

let requestCounter = 0;

/** One request through NGINX, the path sent exactly as given (no dot-segment normalisation). */
function send(
  method: string,
  path: string,
  options: { token?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Reply> {
  const requestId = `e2e-nginx-${process.pid}-${++requestCounter}`;
  const headers: Record<string, string> = { accept: "application/fhir+json", "x-request-id": requestId };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  Object.assign(headers, options.headers);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) headers["content-type"] = "application/fhir+json";
  return new Promise((resolveReply, reject) => {
    const req = request(
      { host: "127.0.0.1", port: gatewayPort, method, path, headers, timeout: 60_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const pairs: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          }
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: the assertions on content type say so
          }
          resolveReply({ status: res.statusCode ?? 0, headers: pairs, text, body, requestId });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 60 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

const all = (r: Reply, name: string) => r.headers.filter(([n]) => n === name).map(([, v]) => v);
const one = (r: Reply, name: string): string | undefined => {
  const values = all(r, name);
  expect(
    values.length,
    `${name} appears ${values.length} times: ${JSON.stringify(values)}`,
  ).toBeLessThanOrEqual(1);
  return values[0];
};

/** Which upstreams NGINX sent the client's request to, from its access log (never the auth subrequest). */
async function upstreamsOf(r: Reply): Promise<string[]> {
  const log = join(runDir, "access.log");
  for (let i = 0; i < 40; i++) {
    const line = readFileSync(log, "utf8")
      .split("\n")
      .find((l) => l.includes(` req_id=${r.requestId} `));
    if (line) {
      const upstream = /\bupstream=(\S+(?:, \S+| : \S+)*)/.exec(line)?.[1] ?? "-";
      return upstream === "-" ? [] : upstream.split(/, | : /);
    }
    await sleep(50);
  }
  throw new Error(`no access log line for ${r.requestId}; ${tail(log)}`);
}

const hapiAddr = `${fhir.hostname}:${fhir.port}`;

/** A refusal as the client must see it: the sidecar's status, FHIR JSON, never HAPI's answer. */
async function expectRefusal(r: Reply, status: number): Promise<OperationOutcome> {
  expect(r.status, r.text.slice(0, 400)).toBe(status);
  expect(one(r, "content-type")).toMatch(FHIR_JSON);
  expect(r.body?.resourceType, r.text.slice(0, 400)).toBe("OperationOutcome");
  expect(r.body.issue.length).toBeGreaterThan(0);
  expect(one(r, "x-decision")).toBe("deny");
  expect(one(r, "x-request-id")).toBe(r.requestId);
  expect(all(r, "x-powered-by").join()).not.toContain(HAPI);
  expect(all(r, "x-policy-revision")).toEqual([]);
  const upstreams = await upstreamsOf(r);
  expect(upstreams).not.toContain(hapiAddr);
  expect(upstreams).toEqual([sidecarAddr]);
  return r.body as OperationOutcome;
}

/** An answer HAPI gave, passed through. */
async function expectForwarded(r: Reply): Promise<void> {
  expect(all(r, "x-powered-by").join()).toContain(HAPI);
  expect(await upstreamsOf(r)).toEqual([hapiAddr]);
  expect(one(r, "x-request-id")).toBe(r.requestId);
}

const diagnostics = (o: OperationOutcome) => o.issue.map((i) => i.diagnostics ?? "").join(" ");

beforeAll(async () => {
  try {
    execFileSync(NGINX, ["-v"], { stdio: "ignore" });
  } catch {
    throw new Error(`'${NGINX}' is not installed: run \`make nginx-tools\` (Debian's nginx)`);
  }
  if (!existsSync("dist/src/cli.js")) throw new Error("dist/ is not built: run `make build`");
  const sidecarPort = await freePort();
  sidecarAddr = `127.0.0.1:${sidecarPort}`;
  const env: Record<string, string> = { SMART_AUTHZ_LISTEN: sidecarAddr };
  if (process.env.E2E_BUNDLE) env.SMART_AUTHZ_BUNDLE = resolve(process.env.E2E_BUNDLE);
  sidecar = await startProcess(
    "nginx-example-sidecar",
    process.execPath,
    ["dist/src/cli.js", "serve", "--config", SIDECAR_CONFIG],
    {
      env,
      ready: async () => (await fetch(`http://${sidecarAddr}/ready`)).status === 200,
      timeoutMs: 120_000,
    },
  );

  gatewayPort = await freePort();
  runDir = resolve(`build/e2e/nginx/${gatewayPort}`);
  nginx = await startProcess("nginx-example", "bash", ["examples/nginx/run.sh"], {
    env: {
      NGINX_LISTEN: `127.0.0.1:${gatewayPort}`,
      SIDECAR_ADDR: sidecarAddr,
      FHIR_ADDR: hapiAddr,
      NGINX_RUN_DIR: runDir,
      NGINX,
    },
    ready: async () => (await fetch(`http://127.0.0.1:${gatewayPort}/`)).status === 404,
    timeoutMs: 60_000,
  });
});

afterAll(async () => {
  try {
    await stopProcess(nginx, "SIGQUIT");
  } finally {
    await stopProcess(sidecar);
  }
});

describe("public: no token, no sidecar", () => {
  it("GET metadata is HAPI's CapabilityStatement", async () => {
    const r = await send("GET", "/fhir/metadata");
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe("CapabilityStatement");
    await expectForwarded(r);
    expect(all(r, "x-decision")).toEqual([]);
  });

  it("anything but GET/HEAD on metadata is refused by NGINX as FHIR (405)", async () => {
    const r = await send("POST", "/fhir/metadata", { body: { resourceType: "Parameters" } });
    expect(r.status).toBe(405);
    expect(one(r, "content-type")).toMatch(FHIR_JSON);
    expect(one(r, "allow")).toBe("GET, HEAD");
    expect(r.body.resourceType).toBe("OperationOutcome");
    expect(await upstreamsOf(r)).toEqual([]);
  });

  it(".well-known/smart-configuration goes to the FHIR server without a token", async () => {
    const r = await send("GET", "/fhir/.well-known/smart-configuration");
    expect(r.status).not.toBe(401);
    await expectForwarded(r); // HAPI publishes none: its own 404; a SMART server answers its document
  });

  it("nothing outside the FHIR base", async () => {
    const r = await send("GET", "/admin");
    expect(r.status).toBe(404);
    expect(r.body.resourceType).toBe("OperationOutcome");
    expect(await upstreamsOf(r)).toEqual([]);
  });
});

describe("token problems: 401 with exactly one WWW-Authenticate", () => {
  it("no token", async () => {
    const r = await send("GET", "/fhir/Observation?patient=123");
    const outcome = await expectRefusal(r, 401);
    expect(all(r, "www-authenticate")).toEqual(['Bearer realm="smart-authz"']);
    expect(outcome.issue[0]).toMatchObject({ severity: "error", code: "login" });
  });

  it("a token that is not a JWS", async () => {
    const r = await send("GET", "/fhir/Observation?patient=123", { token: "abc" });
    await expectRefusal(r, 401);
    const www = all(r, "www-authenticate");
    expect(www).toHaveLength(1);
    expect(www[0]).toMatch(/^Bearer realm="smart-authz", error="invalid_token", error_description="[^"]+"$/);
  });

  it("a token whose signature does not verify", async () => {
    const [h, p] = demoToken({ scope: "patient/*.rs", patient: "123" }).split(".");
    const forged = `${h}.${p}.${Buffer.from("not the signature").toString("base64url")}`;
    const r = await send("GET", "/fhir/Observation?patient=123", { token: forged });
    await expectRefusal(r, 401);
    expect(all(r, "www-authenticate")).toHaveLength(1);
    expect(all(r, "www-authenticate")[0]).toContain('error="invalid_token"');
  });
});

describe("policy refusals: the sidecar's status and OperationOutcome, not NGINX's 500 or HTML", () => {
  const patient123 = () => demoToken({ scope: "patient/*.rs", patient: "123" });

  it("a missing scope: 403 insufficient_scope, the header once", async () => {
    // the CLI's tokens are the demo client's (demo-app), which examples/data/clients.json registers
    // for patient/*.cruds: the hint names a scope it may obtain
    const token = demoToken({ scope: "patient/Observation.rs", patient: "123" });
    const r = await send("GET", "/fhir/Condition?patient=123", { token });
    const outcome = await expectRefusal(r, 403);
    expect(all(r, "www-authenticate")).toEqual([
      'Bearer realm="smart-authz", error="insufficient_scope", scope="patient/Condition.s"',
    ]);
    expect(outcome.issue[0]!.code).toBe("forbidden");
  });

  it("another patient's record: 404, the same answer as for one that does not exist", async () => {
    const token = patient123();
    const other = await send("GET", "/fhir/Patient/999", { token });
    await expectRefusal(other, 404); // through plain auth_request this would be a 500
    const missing = await send("GET", "/fhir/Patient/no-such-patient", { token });
    await expectRefusal(missing, 404);
    expect(other.body).toEqual(missing.body);
    expect(all(other, "www-authenticate")).toEqual([]);
  });

  it("another patient's search: 403", async () => {
    const r = await send("GET", "/fhir/Observation?patient=999", { token: patient123() });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("patient other than the one in context");
  });

  it("paths that would resolve elsewhere on the FHIR server: 400, never forwarded", async () => {
    const token = patient123();
    // NGINX matches the normalised path; the sidecar and HAPI get the client's bytes, so these are
    // decided as sent: /fhir/Patient/123/../999 must not be allowed as Patient/123.
    for (const path of [
      "/fhir/Patient/123/../999",
      "/fhir/Patient/123/%2e%2e/999",
      "/fhir/Patient/123%2f..%2f999",
      "/x/../fhir/Patient/999",
      "/fhir//Patient/999",
      "/fhir/Patient/123;/../999",
    ]) {
      const r = await send("GET", path, { token });
      await expectRefusal(r, 400);
    }
  });

  it("the FHIR base with a query (HAPI's paging links) is decided as the base, not as a type 'fhir'", async () => {
    const r = await send("GET", "/fhir?_getpages=00000000-0000-0000-0000-000000000000", {
      token: patient123(),
    });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("system-wide search");
  });
});

describe("what a status-only gateway cannot enforce is refused (403), never forwarded", () => {
  const patient123 = () => demoToken({ scope: "patient/*.rs", patient: "123" });

  it("a read by id of a compartment resource needs the stored resource", async () => {
    const r = await send("GET", "/fhir/Observation/obs-123-0001", { token: patient123() });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("smart-authz proxy");
  });

  it("a search with _include needs its response filtered", async () => {
    const r = await send("GET", "/fhir/Observation?patient=123&_include=Observation:performer", {
      token: patient123(),
    });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("smart-authz proxy");
  });

  it("a search that would need narrowing (no patient named)", async () => {
    const r = await send("GET", "/fhir/Observation?code=8867-4", { token: patient123() });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("smart-authz proxy");
  });

  // The data set's patient 123 has records labelled HIV, R, PSY (truth.labels). A search's results
  // can carry labels the token may not see, and a status-only gateway cannot drop them: the search
  // must be refused, not forwarded. (Needs the policy's filter-response obligation on every search.)
  it("searches of the patient's own data: labelled records must not pass unfiltered", async () => {
    const labelled = Object.keys(truth.labels).filter((k) => k.startsWith("Observation/obs-123-"));
    expect(labelled).toContain("Observation/obs-123-hiv");
    const token = patient123();
    for (const path of [
      "/fhir/Observation?patient=123",
      "/fhir/Observation?patient=123&_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|HIV",
    ]) {
      const r = await send("GET", path, { token });
      for (const key of labelled)
        expect(r.text, `${path} released ${key}`).not.toContain(`"${key.split("/")[1]}"`);
      const outcome = await expectRefusal(r, 403);
      expect(diagnostics(outcome)).toContain("smart-authz proxy");
    }
  });
});

describe("allowed: what needs nothing more than forwarding reaches HAPI", () => {
  it("a terminology lookup (computed, no patient data): HAPI's answer, X-Decision allow", async () => {
    const token = demoToken({ scope: "patient/*.rs", patient: "123" });
    const r = await send(
      "GET",
      "/fhir/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=male",
      {
        token,
      },
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body.resourceType).toBe("Parameters");
    expect(r.body.parameter).toContainEqual({ name: "display", valueString: "Male" });
    expect(one(r, "x-decision")).toBe("allow");
    expect(one(r, "x-decision-id")).toMatch(/^[0-9a-f-]{36}$/);
    await expectForwarded(r);
  });
});

describe("writes: refused without the body or the stored resource, HAPI unchanged", () => {
  const writer = () => demoToken({ scope: "patient/*.cruds", patient: "123" });
  const OTHER = "Observation/obs-999-0001";

  async function stored(key: string) {
    const r = await fhirGet<Record<string, unknown>>(`${base}/${key}`);
    expect(r.status).toBe(200);
    return r.body;
  }

  it("an update of another patient's record: 403, HAPI unchanged", async () => {
    const before = await stored(OTHER);
    const moved = { ...before, subject: { reference: "Patient/123" }, status: "entered-in-error" };
    delete (moved as { meta?: unknown }).meta;
    const r = await send("PUT", `/fhir/${OTHER}`, { token: writer(), body: moved });
    await expectRefusal(r, 403);
    expect(await stored(OTHER)).toEqual(before);
  });

  it("a delete of another patient's record: 403 (needs the stored resource), HAPI unchanged", async () => {
    const before = await stored(OTHER);
    const r = await send("DELETE", `/fhir/${OTHER}`, { token: writer() });
    const outcome = await expectRefusal(r, 403);
    expect(diagnostics(outcome)).toContain("smart-authz proxy");
    expect(await stored(OTHER)).toEqual(before);
  });

  it("a create for another patient: 403, nothing created", async () => {
    const count = async () =>
      (await fhirGet<Bundle>(`${base}/Observation?subject=Patient/999&_summary=count`)).body.total;
    const before = await count();
    const r = await send("POST", "/fhir/Observation", {
      token: writer(),
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "x" },
        subject: { reference: "Patient/999" },
      },
    });
    await expectRefusal(r, 403);
    expect(await count()).toBe(before);
  });

  it("even a create for the patient's own record is refused: the sidecar never sees the body", async () => {
    const count = async () =>
      (await fhirGet<Bundle>(`${base}/Observation?subject=Patient/123&_summary=count`)).body.total;
    const before = await count();
    const r = await send("POST", "/fhir/Observation", {
      token: writer(),
      body: {
        resourceType: "Observation",
        status: "final",
        code: { text: "x" },
        subject: { reference: "Patient/123" },
      },
    });
    await expectRefusal(r, 403);
    expect(await count()).toBe(before);
  });
});

describe("writes by id need the stored resource, which a gateway does not have", () => {
  // A user/ (or system/) update or delete by id is decided on the stored resource: with it, a
  // record carrying a security label the user has no right to is refused (label-restricted). A
  // status-only gateway never has the stored resource, so the policy answers a filter that needs
  // it and the sidecar refuses it in gateway mode (gateway-needs-stored-resource, contract 1.2).
  const key = "Observation/nginx-e2e-labelled";
  const labelled = {
    resourceType: "Observation",
    id: "nginx-e2e-labelled",
    meta: {
      security: [
        { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "HIV" },
        { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
      ],
    },
    status: "final",
    code: { text: "nginx e2e: a labelled record" },
    subject: { reference: "Patient/999" },
  };
  const hapi = (method: string, body?: unknown) =>
    fetch(`${base}/${key}`, {
      method,
      headers: { "content-type": "application/fhir+json", accept: "application/fhir+json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("a user/ token cannot delete a labelled record it may not read", async () => {
    expect((await hapi("PUT", labelled)).status).toBeLessThan(300);
    try {
      const token = demoToken({ scope: "user/Observation.cruds", fhirUser: "Practitioner/prac-1" });
      const r = await send("DELETE", `/fhir/${key}`, { token });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect((await hapi("GET")).status).toBe(200);
    } finally {
      await hapi("DELETE");
    }
  });
});

describe("the sidecar is down: fail closed", () => {
  it("503 OperationOutcome from NGINX, HAPI not reached, for a request it allowed before", async () => {
    await stopProcess(sidecar);
    const token = demoToken({ scope: "patient/*.rs", patient: "123" });
    const r = await send(
      "GET",
      "/fhir/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=male",
      {
        token,
      },
    );
    expect(r.status).toBe(503);
    expect(one(r, "content-type")).toMatch(FHIR_JSON);
    expect(r.body).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "transient" }] });
    expect(await upstreamsOf(r)).not.toContain(hapiAddr);
  });
});
