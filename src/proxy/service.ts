/**
 * Starts the proxy's front door beside the sidecar's: the same policy pool, token verifier, audit
 * log, logs and metrics (the AppContext), its own listener for the FHIR API, the FHIR server's
 * capabilities watched, paging cursors signed with the configured key (or a random one per process).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AppContext } from "../api/context.js";
import type { ProxyConfig } from "../ops/config.js";
import { createProxyApp } from "./app.js";
import { CapabilityWatcher } from "./capabilities.js";
import { CursorSigner } from "./cursor.js";
import { Decider } from "./decide.js";
import type { ProxyRuntime } from "./exchange.js";
import { UrlMap } from "./rewrite.js";
import { UpstreamClient } from "./upstream.js";

export interface RunningProxy {
  /** Where the proxy listens, e.g. http://127.0.0.1:8080 */
  url: string;
  /** The FHIR base clients use (public_base_url, or the listen address + base path). */
  publicBase: string;
  server: Server;
  runtime: ProxyRuntime;
  close(): Promise<void>;
}

export async function startProxy(ctx: AppContext, config: ProxyConfig): Promise<RunningProxy> {
  const upstream = new UpstreamClient(config.upstream, (seconds, outcome) =>
    ctx.metrics.upstreamDuration.observe({ outcome }, seconds),
  );
  const capabilities = new CapabilityWatcher(upstream, config.upstream.capabilityRefreshMs, ctx.logger);
  const cursors = new CursorSigner(config.cursor.key, config.cursor.ttlMs);
  const runtime: ProxyRuntime = {
    config,
    upstream,
    capabilities,
    cursors,
    urls: new UrlMap(config.upstream.url, config.publicBaseUrl ?? ""),
    decider: new Decider(ctx),
    logger: ctx.logger,
  };
  // The same request clocks and connection cap as the sidecar's listener (server.*): a slow
  // client cannot hold a socket, and the proxy's own connections are bounded too.
  const server = createServer(
    {
      headersTimeout: ctx.config.server.headersTimeoutMs,
      requestTimeout: ctx.config.server.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    createProxyApp(ctx, runtime),
  );
  server.maxConnections = ctx.config.server.maxConnections;
  // A response finished during shutdown closes its connection, so keep-alive clients cannot hold the drain open.
  server.on("request", (req, res) => {
    res.on("finish", () => {
      if (ctx.shuttingDown()) req.socket.end();
    });
  });
  server.keepAliveTimeout = ctx.config.server.keepAliveTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(new Error(`cannot listen on ${config.host}:${config.port} for the proxy: ${err.message}`)),
    );
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const publicBase = config.publicBaseUrl ?? `${url}${config.basePath}`;
  runtime.urls = new UrlMap(config.upstream.url, publicBase);
  if (cursors.ephemeral) {
    ctx.logger.warn(
      { env: config.cursor.keyEnv },
      `no paging-cursor key in ${config.cursor.keyEnv}: a random key is used, so paging links stop working when the proxy restarts and are not shared between replicas`,
    );
  }
  if (config.upstream.auth.type === "forward-client-token") {
    ctx.logger.warn(
      "proxy.upstream.auth is forward-client-token: the client's access token is sent to the FHIR server",
    );
  }
  await capabilities.start();
  ctx.logger.info(
    {
      listen: url,
      public_base: publicBase,
      upstream: config.upstream.url,
      strategy: config.narrowing.strategy,
    },
    `smart-authz proxy listening on ${url} (FHIR base ${publicBase}) in front of ${config.upstream.url}`,
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    publicBase,
    server,
    runtime,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        capabilities.stop();
        server.close(() => {
          upstream.close();
          resolve();
        });
        server.closeIdleConnections();
      })),
  };
}
