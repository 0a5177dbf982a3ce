/**
 * A deleted resource is not an absent one. A server answers 410 for Type/id once it is deleted,
 * yet the id keeps its history, and an update (PUT) recreates it as the next version of that
 * history (HAPI does). So an update-as-create of a deleted id is decided like a write on the
 * stored resource: on the last version that had content. Otherwise a token could write its
 * patient's data into another patient's record (a new version of it), and the version number in
 * the answer (`_history/3`) would tell it the id had been another patient's.
 */
import { type Exchange, type ProxyRuntime, upstreamCall } from "./exchange.js";
import { withQuery } from "./interaction.js";
import { ProxyError } from "./outcome.js";
import { isObject } from "./release.js";

type Json = Record<string, unknown>;

/** Entries of the instance history read to find the last version with content. */
const HISTORY_PAGE = 20;

/**
 * The last version of the deleted Type/id that had content (its instance history, newest first).
 * Throws when the history cannot be read or holds no such version on its first page: the write is
 * then not decided on a guess.
 */
export async function lastVersionBeforeDeletion(
  rt: ProxyRuntime,
  ex: Exchange,
  type: string,
  id: string,
): Promise<Json> {
  const res = await upstreamCall(
    rt,
    ex,
    "GET",
    withQuery(`${type}/${id}/_history`, `_count=${HISTORY_PAGE}`),
  );
  const bundle = res.json;
  if (res.status === 200 && isObject(bundle) && Array.isArray(bundle.entry)) {
    for (const entry of bundle.entry as unknown[]) {
      const resource = isObject(entry) ? entry.resource : undefined;
      if (isObject(resource) && resource.resourceType === type && resource.id === id) return resource;
    }
  }
  throw new ProxyError(
    502,
    "exception",
    `${type}/${id} was deleted and the FHIR server did not give its last version, so writing it again cannot be checked`,
  );
}
