/**
 * What a user/ grant may reach, written from the SMART App Launch scopes page and issue 12 (the
 * policy's default `policy.user.access: relationships`), not from the policy: user/ scopes act for
 * the user named by `fhirUser`. Without a usable fhirUser (missing, another server's, not a user
 * type) they reach nothing; a Patient user reaches its own Patient compartment; a Practitioner its
 * own Practitioner compartment; a RelatedPerson only the patients a relationships document relates
 * it to, and a Practitioner also the compartments of the patients it is related to, directly or
 * through a group. The property engines load RELATIONSHIPS as data.relationships.
 */
import { COMPARTMENT, PRACTITIONER_COMPARTMENT } from "./fhir-data.js";
import { inCompartment } from "./json-patch.js";

/** The relationships document the property engines decide with (data.relationships). */
export const RELATIONSHIPS = {
  version: 1,
  users: {
    "Practitioner/9": { patients: ["456"], groups: ["CareTeam/ward", "CareTeam/undefined"] },
    "RelatedPerson/r1": { patients: ["p-9"] },
  },
  groups: { "CareTeam/ward": { patients: ["123"], list: "ward-list" } },
} as const;

/** The patients a user is related to in RELATIONSHIPS (directly and through defined groups). */
export function relatedPatients(user: { type: string; id: string }): string[] {
  const users = RELATIONSHIPS.users as Record<
    string,
    { patients?: readonly string[]; groups?: readonly string[] }
  >;
  const groups = RELATIONSHIPS.groups as Record<string, { patients: readonly string[] }>;
  const entry = users[`${user.type}/${user.id}`];
  if (!entry) return [];
  return [...(entry.patients ?? []), ...(entry.groups ?? []).flatMap((g) => groups[g]?.patients ?? [])];
}

const USER = /^(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)\/([A-Za-z0-9\-.]{1,64})$/;

/** The user a fhirUser claim names on this server (the engines configure no absolute base URL). */
export function userOf(fhirUser: unknown): { type: string; id: string } | undefined {
  if (typeof fhirUser !== "string") return undefined;
  const m = USER.exec(fhirUser);
  return m ? { type: m[1]!, id: m[2]! } : undefined;
}

function valuesAt(node: unknown, path: string[]): unknown[] {
  let nodes = [node];
  for (const key of path) {
    nodes = nodes.flatMap((n) => {
      if (typeof n !== "object" || n === null || Array.isArray(n)) return [];
      const v = (n as Record<string, unknown>)[key];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    });
  }
  return nodes;
}

/** The resource is in the practitioner's own compartment (or is the practitioner). */
function inPractitionerCompartment(
  resource: Record<string, unknown>,
  user: { type: string; id: string },
): boolean {
  if (resource.resourceType === user.type && resource.id === user.id) return true;
  const links = PRACTITIONER_COMPARTMENT[String(resource.resourceType)] ?? {};
  const ref = `${user.type}/${user.id}`;
  return Object.values(links).some((l) =>
    l.paths.some((p) =>
      valuesAt(resource, p).some((v) => {
        const r = (v as { reference?: unknown } | null)?.reference;
        return typeof r === "string" && (r === ref || r.startsWith(`${ref}/_history/`));
      }),
    ),
  );
}

/** A user/ grant's context admits this resource (its constraints are checked apart). */
export function userReaches(fhirUser: unknown, resource: Record<string, unknown>): boolean {
  const user = userOf(fhirUser);
  if (!user) return false;
  if (user.type === "Patient") return inCompartment(resource, user.id);
  if (relatedPatients(user).some((p) => inCompartment(resource, p))) return true;
  return (
    (user.type === "Practitioner" || user.type === "PractitionerRole") &&
    inPractitionerCompartment(resource, user)
  );
}

/** A user/ grant can search type t at all (narrowed to what the user reaches). */
export function userMaySearch(fhirUser: unknown, t: string): boolean {
  const user = userOf(fhirUser);
  if (!user) return false;
  if (user.type === "Patient") return true;
  if (relatedPatients(user).length > 0 && (t === "Patient" || Object.keys(COMPARTMENT[t] ?? {}).length > 0))
    return true;
  if (user.type === "Practitioner" || user.type === "PractitionerRole")
    return Object.keys(PRACTITIONER_COMPARTMENT[t] ?? {}).length > 0 || t === user.type;
  return false;
}
