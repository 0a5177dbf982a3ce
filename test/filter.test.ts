import { describe, expect, it } from "vitest";
import type { Decision } from "../src/core/contract.js";
import { applyFilter } from "../src/api/filter.js";

const obs = (id: string, mode = "match") => ({
  fullUrl: `https://fhir.test/Observation/${id}`,
  resource: { resourceType: "Observation", id },
  search: { mode },
});

const searchset = () => ({
  resourceType: "Bundle",
  type: "searchset",
  total: 57,
  link: [
    { relation: "self", url: "https://fhir.test/Observation?patient=1" },
    { relation: "next", url: "https://fhir.test/Observation?patient=1&page=2" },
    { relation: "previous", url: "https://fhir.test/Observation?patient=1&page=0" },
  ],
  entry: [
    obs("1"),
    obs("2"),
    obs("3"),
    { resource: { resourceType: "Patient", id: "p" }, search: { mode: "include" } },
  ],
});

/** Every entry of `searchset()`, as the policy lists what it checked and may release. */
const ALL = ["Observation/1", "Observation/2", "Observation/3", "Patient/p"];

const filter = (drop: Decision["drop"], keep: string[] = ALL): Decision => ({
  decision: "filter",
  drop,
  keep,
});

describe("applyFilter", () => {
  it("removes the entries the decision drops by index and leaves the input untouched", () => {
    const input = searchset();
    const before = JSON.stringify(input);
    const out = applyFilter(filter([{ ref: "Observation/2", reason: "label", index: 1 }]), input);
    expect(out.status).toBe(200);
    expect(out.dropped).toBe(1);
    const bundle = out.response as ReturnType<typeof searchset>;
    expect(bundle.entry.map((e) => e.resource.id)).toEqual(["1", "3", "p"]);
    expect(JSON.stringify(input)).toBe(before);
  });

  it("sets a searchset total to the remaining match entries, never the original count", () => {
    const out = applyFilter(filter([{ ref: "Observation/2", reason: "x", index: 1 }]), searchset());
    expect((out.response as { total: number }).total).toBe(2);
    const none = applyFilter(filter([]), searchset());
    expect((none.response as { total: number }).total).toBe(3);
  });

  it("removes paging links but keeps self once anything was dropped", () => {
    const out = applyFilter(filter([{ ref: "Observation/1", reason: "x", index: 0 }]), searchset());
    expect((out.response as { link: unknown[] }).link).toEqual([
      { relation: "self", url: "https://fhir.test/Observation?patient=1" },
    ]);
    const kept = applyFilter(filter([]), searchset());
    expect((kept.response as { link: unknown[] }).link).toHaveLength(3);
  });

  it("drops by ref when the policy gives no index", () => {
    const out = applyFilter(filter([{ ref: "Observation/3", reason: "x" }]), searchset());
    expect((out.response as ReturnType<typeof searchset>).entry.map((e) => e.resource.id)).toEqual([
      "1",
      "2",
      "p",
    ]);
  });

  it("ignores drop items it cannot read instead of crashing", () => {
    const out = applyFilter(
      { decision: "filter", drop: [null, 7, { index: "1" }] as never, keep: ALL },
      searchset(),
    );
    expect(out.dropped).toBe(0);
  });

  it("returns an allowed response without drops unchanged", () => {
    const input = searchset();
    expect(applyFilter({ decision: "allow", keep: ALL, drop: [] }, input).response).toBe(input);
  });

  it("turns a dropped single resource into a 404 OperationOutcome", () => {
    const resource = { resourceType: "Observation", id: "9" };
    const byIndex = applyFilter(filter([{ ref: "Observation/9", reason: "x", index: -1 }]), resource);
    expect(byIndex).toEqual({
      status: 404,
      dropped: 1,
      response: {
        resourceType: "OperationOutcome",
        issue: [{ severity: "error", code: "not-found", diagnostics: "Observation/9 is not available" }],
      },
    });
    expect(applyFilter(filter([{ ref: "Observation/9", reason: "x" }]), resource).status).toBe(404);
    expect(applyFilter(filter([{ ref: "Observation/8", reason: "x" }], ["Observation/9"]), resource)).toEqual(
      {
        status: 200,
        dropped: 0,
        response: resource,
      },
    );
  });

  it("releases nothing for a deny", () => {
    const deny: Decision = {
      decision: "deny",
      status: 403,
      outcome: { resourceType: "OperationOutcome", issue: [] },
    };
    expect(applyFilter(deny, searchset())).toEqual({ status: 403, dropped: 0, response: deny.outcome });
  });

  it("counts every remaining entry as the total of a non-searchset Bundle", () => {
    const history = {
      resourceType: "Bundle",
      type: "history",
      total: 3,
      entry: [obs("1"), obs("2"), obs("3")],
    };
    const out = applyFilter(filter([{ ref: "Observation/1", reason: "x", index: 0 }]), history);
    expect((out.response as { total: number }).total).toBe(2);
  });

  // L5: the host never releases an entry the policy did not list in `keep`.
  it("releases only the entries listed in keep, even when the decision drops nothing", () => {
    const out = applyFilter(filter([], ["Observation/1", "Patient/p"]), searchset());
    const bundle = out.response as ReturnType<typeof searchset>;
    expect(bundle.entry.map((e) => e.resource.id)).toEqual(["1", "p"]);
    expect(out.dropped).toBe(2);
    expect((out.response as { total: number }).total).toBe(1);
    expect((out.response as { link: unknown[] }).link).toHaveLength(1);
    const allow = applyFilter({ decision: "allow" }, searchset());
    expect((allow.response as ReturnType<typeof searchset>).entry).toEqual([]);
    expect(allow.dropped).toBe(4);
  });

  it("keeps an entry without a resource only when keep lists its position", () => {
    const history = {
      resourceType: "Bundle",
      type: "history",
      entry: [
        {
          fullUrl: "https://fhir.test/Observation/o999",
          request: { method: "DELETE", url: "Observation/o999" },
        },
        { response: { status: "204" } },
        "junk",
        { resource: "junk" },
      ],
    };
    const out = applyFilter(filter([], ["entry[1]"]), history);
    expect((out.response as { entry: unknown[] }).entry).toEqual([{ response: { status: "204" } }]);
    expect(applyFilter(filter([], ["entry[0]", "entry[1]", "entry[2]", "entry[3]"]), history).dropped).toBe(
      0,
    );
  });

  it("drops an entry listed in keep when the same ref is dropped at its index (repeated refs)", () => {
    const versions = { resourceType: "Bundle", type: "history", entry: [obs("1"), obs("1")] };
    const out = applyFilter(
      filter([{ ref: "Observation/1", reason: "x", index: 1 }], ["Observation/1"]),
      versions,
    );
    expect((out.response as { entry: unknown[] }).entry).toHaveLength(1);
  });

  it("turns a single resource the decision does not keep into a 404", () => {
    const resource = { resourceType: "Observation", id: "9" };
    expect(applyFilter(filter([], []), resource).status).toBe(404);
    expect(applyFilter({ decision: "allow" }, resource).status).toBe(404);
    expect(applyFilter(filter([], ["entry[-1]"]), { resourceType: "Observation" }).status).toBe(200);
    expect(applyFilter(filter([], [7, null] as never), resource).status).toBe(404);
  });

  it("refuses a Bundle whose entry is not a list instead of passing it through", () => {
    const odd = {
      resourceType: "Bundle",
      type: "searchset",
      entry: { resource: { resourceType: "Observation", id: "1" } },
    };
    const out = applyFilter({ decision: "allow", keep: ["Observation/1"], drop: [] }, odd);
    expect(out.status).toBe(500);
    expect(out.response).toMatchObject({ resourceType: "OperationOutcome" });
  });
});
