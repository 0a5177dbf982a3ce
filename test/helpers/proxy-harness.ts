/**
 * The proxy under test: the real policy bundle, the demo issuer, an audit file, and the fake FHIR
 * server (fake-fhir.ts) behind it. `call` speaks FHIR JSON to the proxy with a token.
 */
import { join } from "node:path";
import { main } from "../../src/cli.js";
import { startService, type Service } from "../../src/server.js";
import { FakeFhir, type FakeOptions } from "./fake-fhir.js";
import { LogSink, REPO, tempDir } from "./fixtures.js";
import { serviceConfig } from "./service-config.js";

export const BUNDLE = join(REPO, "build/bundle.tar.gz");

export interface Harness {
  service: Service;
  fake: FakeFhir;
  /** The proxy's FHIR base, e.g. http://127.0.0.1:40000/fhir */
  base: string;
  logs: LogSink;
  auditPath: string;
  close(): Promise<void>;
}

export async function startHarness(
  fakeOptions: FakeOptions = {},
  proxy: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
  extra: Record<string, unknown> = {},
): Promise<Harness> {
  const fake = await FakeFhir.start(fakeOptions);
  const dir = tempDir("proxy-");
  const { upstream, ...rest } = proxy as { upstream?: Record<string, unknown> };
  const config = serviceConfig(
    dir,
    {
      bundle: BUNDLE,
      audit: { path: "audit.jsonl" },
      proxy: {
        listen: "127.0.0.1:0",
        base_path: "/fhir",
        upstream: { url: fake.base, ...upstream },
        ...rest,
      },
      ...extra,
    },
    env,
  );
  const logs = new LogSink();
  const service = await startService(config, { logDestination: logs, defaultMetrics: false, proxy: true });
  return {
    service,
    fake,
    base: service.proxy!.publicBase,
    logs,
    auditPath: join(dir, "audit.jsonl"),
    close: async () => {
      await service.close();
      await fake.close();
    },
  };
}

export async function demoToken(scope: string, patient?: string, more: string[] = []): Promise<string> {
  let out = "";
  const args = ["token", "--scope", scope, ...(patient ? ["--patient", patient] : []), ...more];
  const code = await main(args, { stdout: (t) => (out += t), stderr: () => {}, stdin: () => "", env: {} });
  if (code !== 0) throw new Error(`token: exit ${code}`);
  return out.trim();
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export async function call(
  url: string,
  init: {
    method?: string;
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    raw?: string;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] ??= "application/fhir+json";
  }
  const res = await fetch(url, { method: init.method ?? "GET", headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Type/id of the match entries of a searchset. */
export function matchIds(bundle: any): string[] {
  return ((bundle?.entry ?? []) as any[])
    .filter((e) => (e.search?.mode ?? "match") === "match" && e.resource?.resourceType !== "OperationOutcome")
    .map((e) => `${e.resource.resourceType}/${e.resource.id}`);
}

/** Follows every `next` link from `url`; returns every match Type/id and the pages. */
export async function pageAll(
  url: string,
  token: string,
  max = 50,
): Promise<{ ids: string[]; pages: any[] }> {
  const ids: string[] = [];
  const pages: any[] = [];
  let next: string | undefined = url;
  while (next) {
    if (pages.length >= max) throw new Error("too many pages");
    const r = await call(next, { token });
    if (r.status !== 200) throw new Error(`GET ${next}: ${r.status} ${JSON.stringify(r.body)}`);
    pages.push(r.body);
    ids.push(...matchIds(r.body));
    next = (r.body.link ?? []).find((l: any) => l.relation === "next")?.url;
  }
  return { ids, pages };
}
