/**
 * What of a FHIR server's own OperationOutcome (a 4xx answer, or a batch entry's outcome) may reach
 * the client. The server wrote it without knowing who asks, and its words can describe records this
 * token may not see: HAPI names the stored record a unique SearchParameter collides with
 * (HAPI-1093 "existing index belongs to Observation/o-999-a"), the resource that references one
 * being deleted (HAPI-0550), the query a conditional write matched. So each issue keeps its
 * severity, code and the FHIRPath `expression` (paths into the client's own request); its
 * `diagnostics` and `details.text` are kept only when they name no resource (`Type/id`), no search
 * (`Type?…`) and no URL; otherwise they are replaced by a sentence saying the server refused.
 * Everything else the server put in (extensions, `location`, contained resources, text) is dropped.
 */
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A resource reference, a search on a type, or a URL: words that may name stored records. */
const NAMES_RECORDS = /[A-Z][A-Za-z]+\s*(?:\/|%2F|\?)|:\/\/|urn:/i;
const ISSUE_CODE = /^[a-z][a-z-]{0,63}$/;
const SEVERITIES = new Set(["fatal", "error", "warning", "information"]);

/** The OperationOutcome the client may see in place of the server's. */
export function serverOutcome(outcome: Json, status: number | undefined): Json {
  const issues = Array.isArray(outcome.issue) ? outcome.issue : [];
  const kept = issues.filter(isObject).map((issue) => serverIssue(issue, status));
  return {
    resourceType: "OperationOutcome",
    issue: kept.length > 0 ? kept : [serverIssue({}, status)],
  };
}

function serverIssue(issue: Json, status: number | undefined): Json {
  const severity =
    typeof issue.severity === "string" && SEVERITIES.has(issue.severity) ? issue.severity : "error";
  const code = typeof issue.code === "string" && ISSUE_CODE.test(issue.code) ? issue.code : "processing";
  const out: Json = { severity, code };
  const withheld = `the FHIR server refused the request${status === undefined ? "" : ` (HTTP ${status})`}; its explanation names stored records and is withheld`;
  const diagnostics = typeof issue.diagnostics === "string" ? issue.diagnostics : undefined;
  const detailsText =
    isObject(issue.details) && typeof issue.details.text === "string" ? issue.details.text : undefined;
  if (diagnostics !== undefined) out.diagnostics = safeText(diagnostics) ?? withheld;
  if (detailsText !== undefined) {
    const text = safeText(detailsText);
    out.details = { text: text ?? withheld };
  }
  if (diagnostics === undefined && detailsText === undefined)
    out.diagnostics = withheld.replace(/; its .*$/, "");
  const expression = Array.isArray(issue.expression)
    ? issue.expression.filter((e): e is string => typeof e === "string" && safeText(e) !== undefined)
    : [];
  if (expression.length > 0) out.expression = expression;
  return out;
}

function safeText(text: string): string | undefined {
  return NAMES_RECORDS.test(text) ? undefined : text;
}
