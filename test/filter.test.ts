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

const filter = (drop: Decision["drop"]): Decision => ({ decision: "filter", drop });

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
    const out = applyFilter({ decision: "filter", drop: [null, 7, { index: "1" }] as never }, searchset());
    expect(out.dropped).toBe(0);
  });

  it("returns an allowed response without drops unchanged", () => {
    const input = searchset();
    expect(applyFilter({ decision: "allow" }, input).response).toBe(input);
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
    expect(applyFilter(filter([{ ref: "Observation/8", reason: "x" }]), resource)).toEqual({
      status: 200,
      dropped: 0,
      response: resource,
    });
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
});
