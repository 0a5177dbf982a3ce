/**
 * The gateway-mode invariant (C1), as a property over the real service: NGINX auth_request and
 * Envoy ext_authz forward a request on any 2xx, so in gateway mode a 2xx is only ever given to an
 * `allow` that needs nothing more (no obligation but `audit`, no refused batch entry, nothing that
 * needed the stored resource), or, for a declared enforcing gateway that presents its key, to a
 * `filter` or an allow with a `filter-response` obligation (still never a refused entry or a
 * decision that needed the stored resource). Checked on the answer itself and, for the decision
 * API's gateway mode, against the policy's own decision for the same input (default mode).
 *
 * Used by `make fuzz` (test/fuzz/http.fuzz.ts) and by a small sample in every `vitest run`
 * (test/gateway-mode.test.ts).
 */
import fc from "fast-check";
import type { Decision } from "../../../src/core/contract.js";
import { anyRequestCaseArb, patientArb, scopesForArb, type RequestCase } from "./arbitraries.js";

export interface GatewayTarget {
  /** The service's base URL. */
  url: string;
  /** A token the service accepts, carrying `claims`. */
  mint(claims: Record<string, unknown>): Promise<string>;
  /** The key of a declared enforcing gateway, if the service has one. */
  enforcingKey?: string;
}

export type Front = "path" | "mode-query" | "mode-header";

export interface GatewayCase {
  claims: Record<string, unknown>;
  rc: RequestCase;
  front: Front;
  enforcing: boolean;
}

export const gatewayCaseArb: fc.Arbitrary<GatewayCase> = anyRequestCaseArb.chain((rc) =>
  fc.record({
    claims: fc
      .record({
        scopes: scopesForArb(rc.type),
        patient: fc.option(patientArb, { nil: undefined }),
        fhirUser: fc.option(fc.constantFrom("Practitioner/9", "Patient/123"), { nil: undefined }),
      })
      .map(({ scopes, patient, fhirUser }) => ({
        scope: scopes.join(" "),
        sub: "fuzz-user",
        ...(patient !== undefined ? { patient } : {}),
        ...(fhirUser !== undefined ? { fhirUser } : {}),
      })),
    rc: fc.constant(rc),
    front: fc.constantFrom<Front>("path", "mode-query", "mode-header"),
    enforcing: fc.boolean(),
  }),
);

/** Why `d` may not be answered 2xx to a gateway (enforcing or not), or undefined when it may. */
export function gatewayViolation(d: Decision, enforcing: boolean): string | undefined {
  if (d.decision === "deny") return "a deny";
  if (!enforcing && d.decision !== "allow") return `a ${d.decision} to a gateway that does not enforce it`;
  const obligations = (d.obligations ?? []).filter((o) => o.type !== "audit").map((o) => o.type);
  if (!enforcing && obligations.length > 0) return `an allow with obligations ${obligations.join(", ")}`;
  if (someDeep(d, (x) => x.decision === "deny" && x !== d)) return "a batch with a refused entry";
  if (someDeep(d, (x) => (x.reasons ?? []).some((r) => r?.code === "stored-resource-not-supplied")))
    return "a decision that needed the stored resource";
  return undefined;
}

function someDeep(d: Decision, test: (x: Decision) => boolean): boolean {
  return test(d) || (d.entries ?? []).some((e) => someDeep(e, test));
}

const VISIBLE = /^[\x20-\x7e]*$/;

/** Sends one case through the gateway front door and checks the invariant; throws with the evidence. */
export async function checkGatewayCase(target: GatewayTarget, c: GatewayCase): Promise<void> {
  const token = await target.mint(c.claims);
  const enforcing = c.enforcing && target.enforcingKey !== undefined;
  const keyHeader: Record<string, string> = enforcing
    ? { "x-smart-authz-gateway-key": target.enforcingKey! }
    : {};
  const request = c.rc.request;
  let res: Response;
  if (c.front === "path") {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...keyHeader };
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      const v = Array.isArray(value) ? value.join(", ") : value;
      if (VISIBLE.test(v) && /^[a-z0-9-]+$/.test(name)) headers[name] = v;
    }
    let body: string | undefined;
    if (request.method !== "GET" && request.method !== "HEAD" && request.body !== undefined) {
      if (typeof request.body === "string") {
        body = request.body;
        headers["content-type"] = "application/x-www-form-urlencoded";
      } else {
        body = JSON.stringify(request.body);
        headers["content-type"] = "application/fhir+json";
      }
    }
    res = await fetch(`${target.url}/v1/gateway/${request.url}`, { method: request.method, headers, body });
  } else {
    const input = { token, request, ...(c.rc.resource !== undefined ? { resource: c.rc.resource } : {}) };
    const query = c.front === "mode-query" ? "?mode=gateway" : "";
    const modeHeader: Record<string, string> =
      c.front === "mode-header" ? { "x-smart-authz-mode": "gateway" } : {};
    res = await fetch(`${target.url}/v1/decision${query}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...modeHeader, ...keyHeader },
      body: JSON.stringify(input),
    });
  }
  const text = await res.text();
  if (res.status < 200 || res.status > 299) return;

  const evidence = () => JSON.stringify({ case: c, status: res.status, answer: text.slice(0, 600) });
  const header = res.headers.get("x-decision");
  if (header !== "allow" && !(enforcing && header === "filter")) {
    throw new Error(`gateway mode answered ${res.status} with X-Decision ${header}: ${evidence()}`);
  }
  if (text === "") return; // HEAD
  const answered = JSON.parse(text) as Decision;
  const own = gatewayViolation(answered, enforcing);
  if (own) throw new Error(`gateway mode answered ${res.status} to ${own}: ${evidence()}`);
  if (answered.decision !== header)
    throw new Error(`X-Decision ${header} differs from the body: ${evidence()}`);
  if (c.front === "path") return;

  // The policy's own decision for the same input must allow the 2xx too.
  const plain = await fetch(`${target.url}/v1/decision`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      token,
      request,
      ...(c.rc.resource !== undefined ? { resource: c.rc.resource } : {}),
    }),
  });
  const policy = (await plain.json()) as Decision;
  const why = gatewayViolation(policy, enforcing);
  if (why) {
    throw new Error(
      `gateway mode answered ${res.status} although the policy decided ${why}: ${JSON.stringify(policy).slice(0, 600)} ${evidence()}`,
    );
  }
}
