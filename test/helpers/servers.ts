/**
 * Local HTTP servers the sidecar talks to in tests (loopback only, port 0): a JWKS endpoint with
 * key rotation and a fetch counter, and a bundle server with ETags. Plus an issuer that mints
 * tokens with its current key.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  type CryptoKey as JoseKey,
  type JWK,
  type JWTPayload,
} from "jose";

export interface Listening {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: JoseKey;
  publicJwk: JWK;
}

export async function newKey(kid: string, alg = "ES256"): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk };
}

/** A token issuer: a JWKS over HTTP whose keys can rotate, counting fetches. */
export class TestIssuer {
  fetches = 0;
  keys: SigningKey[] = [];
  available = true;
  private constructor(
    readonly http: Listening,
    readonly issuer: string,
  ) {}

  static async start(issuer = "https://issuer.test"): Promise<TestIssuer> {
    let self: TestIssuer | undefined;
    const http = await listen((req, res) => self!.handle(req, res));
    self = new TestIssuer(http, issuer);
    self.keys = [await newKey("k1")];
    return self;
  }

  /** This issuer as an entry of `tokens.issuers` (audience https://fhir.test, ES256, its JWKS URL). */
  get configEntry(): { issuer: string; audience: string; algorithms: string[]; jwks_uri: string } {
    return {
      issuer: this.issuer,
      audience: "https://fhir.test",
      algorithms: ["ES256"],
      jwks_uri: this.jwksUri,
    };
  }

  get jwksUri(): string {
    return `${this.http.url}/jwks.json`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url !== "/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    this.fetches++;
    if (!this.available) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }));
  }

  /** Replaces the published keys with a fresh one (kid) and returns it. */
  async rotate(kid: string): Promise<SigningKey> {
    const key = await newKey(kid);
    this.keys = [key];
    return key;
  }

  async token(
    claims: JWTPayload & Record<string, unknown> = {},
    options: {
      key?: SigningKey;
      header?: Record<string, unknown>;
      audience?: string;
      expiresIn?: number;
    } = {},
  ): Promise<string> {
    const key = options.key ?? this.keys[0]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ scope: "patient/Observation.rs", patient: "123", ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, ...(options.header ?? {}) })
      .setIssuer((claims.iss as string | undefined) ?? this.issuer)
      .setAudience(options.audience ?? "https://fhir.test")
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(key.privateKey);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** A bundle server with ETag/If-None-Match, a request log and an optional bearer token. */
export class BundleServer {
  requests: { etag: string | undefined; status: number; auth: string | undefined }[] = [];
  private bytes: Uint8Array = new Uint8Array();
  private etag = "";
  requiredToken: string | undefined;
  private constructor(readonly http: Listening) {}

  static async start(): Promise<BundleServer> {
    let self: BundleServer | undefined;
    const http = await listen((req, res) => self!.handle(req, res));
    self = new BundleServer(http);
    return self;
  }

  get url(): string {
    return `${this.http.url}/bundles/policy.tar.gz`;
  }

  publish(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.etag = `"${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}"`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const inm = req.headers["if-none-match"];
    const auth = req.headers.authorization;
    let status = 200;
    if (this.requiredToken && auth !== `Bearer ${this.requiredToken}`) status = 401;
    else if (req.url !== "/bundles/policy.tar.gz") status = 404;
    else if (inm === this.etag) status = 304;
    this.requests.push({ etag: inm, status, auth });
    if (status !== 200) {
      res.writeHead(status, status === 304 ? { etag: this.etag } : {}).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/gzip", etag: this.etag });
    res.end(Buffer.from(this.bytes));
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
