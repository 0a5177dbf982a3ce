/**
 * The shipped examples stay valid without a FHIR server: the NGINX example's sidecar config loads
 * (FHIR base /fhir, not declared as an enforcing gateway, loopback only), its template holds only
 * the placeholders run.sh fills, NGINX accepts the rendered configuration (when nginx is
 * installed), and the headers that only the gateway may set are overwritten on both questions to
 * the sidecar. The example itself runs for real in test/e2e/nginx-gateway.e2e.ts (`make e2e`).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/ops/config.js";
import { REPO, tempDir } from "./helpers/fixtures.js";

const EXAMPLE = join(REPO, "examples/nginx");
const template = readFileSync(join(EXAMPLE, "nginx.conf.template"), "utf8");
const hasNginx = spawnSync("nginx", ["-v"], { stdio: "ignore" }).status === 0;

describe("examples/nginx", () => {
  it("smart-authz.yaml is a valid config for a status-only gateway in front of /fhir", () => {
    const config = loadConfig(join(EXAMPLE, "smart-authz.yaml"), {});
    expect(config.server.fhirBasePath).toBe("/fhir");
    expect(config.server.host).toBe("127.0.0.1");
    expect(config.gateway.enforcing).toEqual([]);
    expect(config.tokens.trustForwardedClaims).toBe(false);
  });

  it("the template uses exactly the placeholders run.sh replaces", () => {
    const placeholders = new Set(template.match(/@[A-Z_]+@/g));
    expect([...placeholders].sort()).toEqual(["@FHIR@", "@LISTEN@", "@RUN_DIR@", "@SIDECAR@"]);
    const script = readFileSync(join(EXAMPLE, "run.sh"), "utf8");
    for (const p of placeholders) expect(script).toContain(`s|${p}|`);
  });

  it("both questions to the sidecar overwrite the headers only the gateway may set", () => {
    const blocks = [
      /location = \/_smart_authz \{([\s\S]*?)\n {8}\}/.exec(template)?.[1],
      /location @refused \{([\s\S]*?)\n {8}\}/.exec(template)?.[1],
    ];
    for (const block of blocks) {
      expect(block).toBeDefined();
      for (const header of [
        "X-Original-URI $request_uri",
        "X-Original-Method $request_method",
        'Content-Length ""',
      ]) {
        expect(block).toContain(`proxy_set_header ${header};`);
      }
      expect(block).toContain("proxy_pass_request_body off;");
      expect(block).toContain('proxy_set_header X-Smart-Authz-Gateway-Key "";');
      expect(block).toContain('proxy_set_header X-Smart-Authz-Mode "";');
    }
    expect(blocks[0]).toContain('proxy_set_header X-Smart-Authz-Body "";');
    expect(blocks[1]).toContain("proxy_set_header X-Smart-Authz-Body outcome;");
  });

  it.skipIf(!hasNginx)("nginx accepts the rendered configuration (run.sh -t)", () => {
    const runDir = tempDir();
    execFileSync("bash", [join(EXAMPLE, "run.sh"), "-t"], {
      env: {
        ...process.env,
        NGINX_RUN_DIR: runDir,
        NGINX_LISTEN: "127.0.0.1:1",
        SIDECAR_ADDR: "127.0.0.1:2",
      },
      stdio: "pipe",
    });
    const rendered = readFileSync(join(runDir, "nginx.conf"), "utf8");
    expect(rendered).not.toMatch(/@[A-Z_]+@/);
    expect(rendered).toContain(`pid ${runDir}/nginx.pid;`);
  });

  it("run.sh refuses a run directory that would break the configuration", () => {
    const r = spawnSync("bash", [join(EXAMPLE, "run.sh"), "-t"], {
      env: { ...process.env, NGINX_RUN_DIR: join(tempDir(), "a;b") },
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("NGINX_RUN_DIR may hold only");
  });
});
