/**
 * Lifecycle of the sidecar: wire config -> token verifier, bundle source, metrics, logs and the
 * HTTP app; listen; announce; reload on SIGHUP; on SIGTERM/SIGINT stop accepting, drain in-flight
 * requests (bounded by `server.shutdown_grace_seconds`) and exit.
 */
import { open } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { DestinationStream } from "pino";
import { AuditLog } from "./ops/audit.js";
import { BundleSource } from "./policy/bundle-source.js";
import { DataDocumentSource, type DataDocumentName } from "./policy/data-document.js";
import { userAccessMode, userAccessSummary, type Config } from "./ops/config.js";
import { DEMO_ISSUER } from "./ops/default-config.js";
import { SmartAuthzError, describeError } from "./core/errors.js";
import { createApp } from "./api/app.js";
import { createLogger, type Logger } from "./ops/logging.js";
import { createMetrics, type Metrics } from "./ops/metrics.js";
import { PolicyPool } from "./policy/pool.js";
import { TokenVerifier } from "./auth/tokens.js";
import { startProxy, type RunningProxy } from "./proxy/service.js";

export const VERSION = "0.1.0";

export interface ServiceOptions {
  /** Where logs go (default stdout). */
  logDestination?: DestinationStream;
  /** Install SIGHUP (reload) and SIGTERM/SIGINT (graceful exit) handlers. The CLI does; tests don't. */
  signals?: boolean;
  /** Collect Node process metrics (default true). */
  defaultMetrics?: boolean;
  /** Also open the enforcing proxy's front door (`smart-authz proxy`; needs the `proxy:` section). */
  proxy?: boolean;
}

export interface Service {
  /** Base URL, e.g. http://127.0.0.1:8282 */
  url: string;
  port: number;
  config: Config;
  bundles: BundleSource;
  /** The data documents beside the bundle, from the config's `data:` section. */
  documents: DataDocumentSource[];
  tokens: TokenVerifier;
  metrics: Metrics;
  logger: Logger;
  server: Server;
  /** The audit log (undefined when the config has no `audit` section). */
  audit: AuditLog | undefined;
  /** The enforcing proxy, when started with `proxy: true`. */
  proxy: RunningProxy | undefined;
  /**
   * What SIGHUP does: reopens the audit file (log rotation) and re-reads the bundle now. Resolves
   * true when a new bundle was activated.
   */
  reload(): Promise<boolean>;
  /** Stops accepting, drains in-flight requests, then closes. Idempotent. */
  close(): Promise<void>;
}

export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  if (options.proxy && !config.proxy) {
    throw new SmartAuthzError(
      "CONFIG_INVALID",
      `${config.origin}: the proxy needs a \`proxy:\` section with at least \`upstream.url\` (the FHIR server's base URL)`,
    );
  }
  const logger = createLogger(config.logging, options.logDestination);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics });
  const tokens = new TokenVerifier(config.tokens);
  const bundles = new BundleSource(config.bundle, config.policy);
  const audit = config.audit ? new AuditLog(config.audit.path, { sync: config.audit.sync }) : undefined;
  // Evaluation runs in worker threads sharing one compiled module (src/policy/pool.ts); every bundle
  // activation hot-swaps the pool.
  const pool = new PolicyPool({
    ...config.pool,
    onEvent: (event) => {
      if (event.type === "timeout") metrics.policyTimeouts.inc();
      if (event.type !== "activated") logger.warn({ pool: event }, `policy pool: ${event.type}`);
    },
  });
  let poolReady: Promise<void> = Promise.resolve();
  bundles.on({
    activated(engine, previous) {
      poolReady = pool.activate(engine);
      poolReady.catch((err: unknown) =>
        logger.error(
          { error: describeError(err), revision: engine.revision },
          "policy pool could not switch bundles",
        ),
      );
      metrics.setRevision(engine.revision);
      metrics.bundleActivations.inc();
      logger.info(
        { revision: engine.revision, previous_revision: previous?.revision, wasm_sha256: engine.wasmSha256 },
        `policy bundle activated (revision ${engine.revision})`,
      );
    },
    failed(error, kept) {
      metrics.bundleFailures.inc();
      logger.error(
        { code: error.code, error: error.message, kept_revision: kept ?? null },
        kept
          ? `new policy bundle rejected; still serving revision ${kept}`
          : "policy bundle could not be loaded",
      );
    },
  });
  // Data documents load first, so that the first engine already decides with them.
  const documents = Object.entries(config.data).map(
    ([name, source]) =>
      new DataDocumentSource(name as DataDocumentName, source, {
        changed(document, value) {
          logger.info({ document }, `data document ${document} activated`);
          bundles
            .setDocument(document, value)
            .catch((err: unknown) =>
              logger.error(
                { document, error: describeError(err) },
                "the policy could not take the new data document",
              ),
            );
        },
        failed(document, error) {
          logger.error(
            { document, code: error.code, error: error.message },
            `data document ${document} rejected; the last good copy (if any) keeps serving`,
          );
        },
      }),
  );
  await Promise.all(documents.map((d) => d.start()));
  const stopDocuments = () => documents.forEach((d) => d.stop());
  await bundles.start();
  if (!bundles.current && config.bundle.source.kind === "file") {
    bundles.stop();
    stopDocuments();
    throw new SmartAuthzError(
      "BUNDLE_INVALID",
      bundles.status.lastError ?? "the policy bundle could not be loaded",
    );
  }
  try {
    await poolReady;
  } catch (err) {
    bundles.stop();
    stopDocuments();
    await pool.close();
    throw err;
  }

  let shuttingDown = false;
  const ctx = {
    config,
    evaluator: pool,
    tokens,
    metrics,
    logger,
    bundleStatus: () => bundles.status,
    dataStatus: () => Object.fromEntries(documents.map((d) => [d.name, d.status])),
    shuttingDown: () => shuttingDown,
    version: VERSION,
    audit,
  };
  const app = createApp(ctx);
  // A request must arrive whole within server.request_timeout_seconds (its headers within
  // headers_timeout_seconds) of its first byte, or it gets 408: a slow client cannot hold a socket.
  // The clocks are checked every second (Node's default is every 30 s).
  const server = createServer(
    {
      headersTimeout: config.server.headersTimeoutMs,
      requestTimeout: config.server.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    app,
  );
  // Idle keep-alive connections must outlive the gateway's upstream idle timeout (docs/sidecar.md);
  // the request clocks above start with a request's first byte, so they do not cut idle ones short.
  server.keepAliveTimeout = config.server.keepAliveTimeoutMs;
  // Beyond this many open connections, new ones are closed at once.
  server.maxConnections = config.server.maxConnections;
  // A response finished during shutdown closes its connection, so keep-alive clients cannot hold the drain open.
  server.on("request", (req, res) => {
    res.on("finish", () => {
      if (shuttingDown) req.socket.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      bundles.stop();
      stopDocuments();
      void pool.close();
      reject(new Error(`cannot listen on ${config.server.host}:${config.server.port}: ${err.message}`));
    });
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  if (config.demo) {
    logger.warn(
      { issuer: DEMO_ISSUER },
      "DEMO issuer is trusted: its private key is published in the smart-authz repository. Never use this config in production.",
    );
  }
  if (audit) {
    await probeAudit(audit.path).catch((err: unknown) =>
      logger.error(
        { path: audit.path, error: describeError(err) },
        "the audit log cannot be opened: every decision that must be audited will be refused",
      ),
    );
  } else {
    logger.warn(
      "no audit log is configured (`audit.path`): every decision that must be audited will be refused",
    );
  }
  if (userAccessMode(config) === "server") logger.warn({ user_access: "server" }, userAccessSummary(config));
  else logger.info({ user_access: "relationships" }, userAccessSummary(config));
  if (config.tokens.trustForwardedClaims) {
    logger.warn(
      "tokens.trust_forwarded_claims is on: callers may send claims without a token; only the gateway must reach this port",
    );
  }
  logger.info(
    {
      listen: url,
      revision: bundles.current?.revision ?? null,
      config: config.origin,
      bundle: bundles.status.source,
      issuers: config.tokens.issuers.map((i) => i.issuer),
      user_access: userAccessMode(config),
      version: VERSION,
    },
    `smart-authz ${VERSION} listening on ${url} (policy revision ${bundles.current?.revision ?? "none yet"})`,
  );

  let proxy: RunningProxy | undefined;
  if (options.proxy && config.proxy) {
    try {
      proxy = await startProxy(ctx, config.proxy);
    } catch (err) {
      bundles.stop();
      stopDocuments();
      server.close();
      await pool.close();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      shuttingDown = true;
      bundles.stop();
      stopDocuments();
      // The proxy's in-flight requests still need the policy: it drains before the pool closes.
      const proxyClosed = proxy?.close() ?? Promise.resolve();
      logger.info("shutting down: draining in-flight requests");
      const force = setTimeout(() => {
        logger.warn("shutdown grace period over: closing remaining connections");
        server.closeAllConnections();
        proxy?.server.closeAllConnections();
      }, config.server.shutdownGraceMs);
      force.unref();
      server.close(() => {
        removeSignals();
        void proxyClosed
          .then(() => {
            clearTimeout(force);
            return Promise.all([pool.close(), audit?.close()]);
          })
          .finally(() => {
            logger.info("stopped");
            resolve();
          });
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  const reopenAudit = async (): Promise<void> => {
    if (!audit) return;
    await audit.reopen();
    await probeAudit(audit.path).catch((err: unknown) =>
      logger.error({ path: audit.path, error: describeError(err) }, "the audit log cannot be reopened"),
    );
  };
  const onHup = () => {
    logger.info("SIGHUP: reopening the audit log and reloading the policy bundle");
    void reopenAudit();
    void bundles.reload(true);
    for (const d of documents) void d.reload(true);
  };
  const onTerm = (signal: NodeJS.Signals) => {
    logger.info({ signal }, `${signal}: graceful shutdown`);
    void close().then(() => process.exit(0));
  };
  const removeSignals = () => {
    if (!options.signals) return;
    process.off("SIGHUP", onHup);
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onTerm);
  };
  if (options.signals) {
    process.on("SIGHUP", onHup);
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onTerm);
  }

  return {
    url,
    port: address.port,
    config,
    bundles,
    documents,
    tokens,
    metrics,
    logger,
    server,
    audit,
    proxy,
    reload: async () => {
      await reopenAudit();
      await Promise.all(documents.map((d) => d.reload(true)));
      const activated = await bundles.reload(true);
      if (activated) await poolReady.catch(() => undefined);
      return activated;
    },
    close,
  };
}

/** Creates the audit file if needed (mode 0600) and checks that it can be opened for appending. */
async function probeAudit(path: string): Promise<void> {
  const file = await open(path, "a", 0o600);
  await file.close();
}
