/**
 * What a FHIR client may read without a token: the server's CapabilityStatement (`metadata`,
 * FHIR R4 3.1.0.10) and its SMART configuration (`.well-known/smart-configuration`, SMART App
 * Launch 2.2 §2.1) are how a client discovers where to get one. Only GET and HEAD of exactly these
 * paths (relative to the FHIR base; any query) are public: `metadata/`, `metadata/../Patient` or
 * an encoded spelling are not, and need a token like everything else.
 */
const PUBLIC_PATHS = new Set(["metadata", ".well-known/smart-configuration"]);

export function isPublicRequest(request: { method: string; url: string }): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const q = request.url.indexOf("?");
  return PUBLIC_PATHS.has(q === -1 ? request.url : request.url.slice(0, q));
}
