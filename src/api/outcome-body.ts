/**
 * `X-Smart-Authz-Body: outcome` (gateway mode only): the answer's body is FHIR, the OperationOutcome
 * alone (`application/fhir+json`), for a gateway that hands the sidecar's answer to the client as
 * it is (examples/nginx: NGINX's error_page asks again for the body auth_request threw away). The
 * decision document, with its internal reasons, then stays between the sidecar and the gateway.
 */
import type { Request, Response } from "express";
import type { Decision } from "../core/contract.js";
import type { HttpError } from "./context.js";

export const BODY_HEADER = "x-smart-authz-body";

/** Gateway mode: `/v1/gateway/*` always, `/v1/decision` with `?mode=gateway` or `X-Smart-Authz-Mode`. */
export function isGatewayMode(req: Request, gatewayEndpoint: boolean): boolean {
  return (
    gatewayEndpoint ||
    req.query.mode === "gateway" ||
    req.get("x-smart-authz-mode")?.toLowerCase() === "gateway"
  );
}

/** A gateway-mode caller that asked for the FHIR form of the answer. */
export function wantsOutcomeBody(req: Request): boolean {
  const gatewayEndpoint = req.path.startsWith("/v1/gateway");
  return (
    isGatewayMode(req, gatewayEndpoint) &&
    !req.path.startsWith("/v1/filter") &&
    req.get(BODY_HEADER)?.trim().toLowerCase() === "outcome"
  );
}

/**
 * The FHIR form of a gateway-mode answer: a deny's OperationOutcome; for a 2xx (the request may be
 * forwarded) an informational one, because there is nothing to refuse.
 */
export function sendOutcome(res: Response, status: number, decision: Decision): void {
  const outcome =
    decision.decision === "deny"
      ? (decision.outcome ?? operationOutcome("error", "forbidden", "the request is refused"))
      : operationOutcome("information", "informational", "the request is permitted as it is");
  res.type("application/fhir+json").status(status).json(outcome);
}

/** An HTTP error (malformed forwarded request, body too large, …) in the FHIR form. */
export function sendErrorOutcome(res: Response, err: HttpError): void {
  res
    .type("application/fhir+json")
    .status(err.status)
    .json(operationOutcome("error", err.status >= 500 ? "exception" : "invalid", err.message));
}

/** An X-Request-Id worth logging: a plain token of at most 128 characters, else none. */
export function plainRequestId(value: string | undefined): string | undefined {
  return value !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

function operationOutcome(severity: string, code: string, diagnostics: string): Record<string, unknown> {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}
