/**
 * The client for the FHIR server behind the proxy (node:http/https, keep-alive). It adds the
 * configured credentials (never the client's token unless `forward-client-token`), the request id
 * and X-Forwarded-For/Proto/Host, asks for JSON only, and reads the answer under a size limit and a
 * deadline. An answer that is not JSON, too large or too late is an UpstreamError (502/504):
 * nothing reaches the client that the proxy could not read and check.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { ProxyConfig } from "../ops/config.js";

export interface UpstreamRequest {
  method: string;
  /** Relative to the upstream base: "Observation?code=x", "" for the base. */
  target: string;
  /** Extra request headers (lower-case names); hop-by-hop and credential headers are ignored. */
  headers?: Record<string, string>;
  body?: Buffer;
  /** The client request this serves: for X-Request-Id, X-Forwarded-* and a forwarded token. */
  client: ClientInfo;
}

export interface ClientInfo {
  requestId: string;
  /** The X-Forwarded-For value to send (client chain plus the client's address). */
  forwardedFor: string;
  forwardedProto: string;
  forwardedHost: string;
  /** The client's bearer token; sent only with `auth.type: forward-client-token`. */
  token?: string;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined when the body was empty. */
  json: unknown;
  bytes: number;
}

export type UpstreamFailure = "timeout" | "too-large" | "unreachable" | "not-json" | "invalid-json";

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }

  /** 504 for a timeout, 502 for everything else. */
  get status(): number {
    return this.kind === "timeout" ? 504 : 502;
  }
}

/** Headers never sent upstream by request: connection-level, credentials, or set by the proxy itself. */
const NEVER_FORWARD = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "authorization",
  "cookie",
  "accept",
  "accept-encoding",
  "x-request-id",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
]);

const JSON_TYPE = /^application\/(fhir\+json|json|json\+fhir|[a-z0-9.+-]*\+json)\s*(;|$)/i;

export class UpstreamClient {
  readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly secure: boolean;

  constructor(
    private readonly config: ProxyConfig["upstream"],
    /** Told how long each call took and how it ended (status class or failure kind). */
    private readonly observe: (seconds: number, outcome: string) => void = () => {},
  ) {
    this.base = new URL(config.url);
    this.secure = this.base.protocol === "https:";
    this.agent = this.secure
      ? new HttpsAgent({ keepAlive: true, maxSockets: 64 })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  }

  /** The absolute URL of a target relative to the base. */
  urlOf(target: string): URL {
    const base = this.config.url;
    return new URL(target === "" ? base : target.startsWith("?") ? `${base}${target}` : `${base}/${target}`);
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const res = await this.send(req);
      this.observe(seconds(), `${Math.floor(res.status / 100)}xx`);
      return res;
    } catch (err) {
      this.observe(seconds(), err instanceof UpstreamError ? err.kind : "error");
      throw err;
    }
  }

  private send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const url = this.urlOf(req.target);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers ?? {})) {
      const n = name.toLowerCase();
      if (!NEVER_FORWARD.has(n) && !/[\r\n]/.test(value)) headers[n] = value;
    }
    headers.accept = "application/fhir+json";
    headers["accept-encoding"] = "identity";
    const set = (name: string, value: string) => {
      if (value !== "" && !/[\r\n]/.test(value)) headers[name] = value;
    };
    set("x-request-id", req.client.requestId);
    set("x-forwarded-for", req.client.forwardedFor);
    set("x-forwarded-proto", req.client.forwardedProto);
    set("x-forwarded-host", req.client.forwardedHost);
    headers["user-agent"] = "smart-authz-proxy";
    const auth = this.config.auth;
    if (auth.type === "bearer") headers.authorization = `Bearer ${auth.token}`;
    else if (auth.type === "basic")
      headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
    else if (auth.type === "forward-client-token" && req.client.token)
      headers.authorization = `Bearer ${req.client.token}`;
    if (req.body !== undefined) headers["content-length"] = String(req.body.length);

    const send = this.secure ? httpsRequest : httpRequest;
    const limit = this.config.maxResponseBytes;
    return new Promise<UpstreamResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: UpstreamError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        reject(err);
      };
      const request = send(url, { method: req.method, headers, agent: this.agent }, (res) => {
        const status = res.statusCode ?? 502;
        const declared = Number(res.headers["content-length"]);
        if (Number.isFinite(declared) && declared > limit) {
          res.resume();
          fail(
            new UpstreamError(
              "too-large",
              `the FHIR server's answer is ${declared} bytes, over the ${limit}-byte limit`,
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            fail(new UpstreamError("too-large", `the FHIR server's answer is over the ${limit}-byte limit`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", () => fail(new UpstreamError("unreachable", "the FHIR server's answer was cut off")));
        res.on("aborted", () =>
          fail(new UpstreamError("unreachable", "the FHIR server's answer was cut off")),
        );
        res.on("end", () => {
          if (settled) return;
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
          let json: unknown;
          if (body.length > 0 && body.toString("utf8").trim() !== "") {
            const type = res.headers["content-type"] ?? "";
            if (!JSON_TYPE.test(type)) {
              fail(
                new UpstreamError(
                  "not-json",
                  `the FHIR server answered ${status} with ${JSON.stringify(type || "no content type")}, not JSON`,
                ),
              );
              return;
            }
            try {
              json = JSON.parse(body.toString("utf8"));
            } catch {
              fail(
                new UpstreamError(
                  "invalid-json",
                  `the FHIR server answered ${status} with a body that is not valid JSON`,
                ),
              );
              return;
            }
          }
          settled = true;
          clearTimeout(timer);
          resolve({ status, headers: res.headers, json, bytes: size });
        });
      });
      const timer = setTimeout(
        () =>
          fail(
            new UpstreamError("timeout", `the FHIR server did not answer within ${this.config.timeoutMs} ms`),
          ),
        this.config.timeoutMs,
      );
      request.on("error", (err) =>
        fail(new UpstreamError("unreachable", `the FHIR server cannot be reached: ${err.message}`)),
      );
      request.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
