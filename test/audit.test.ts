/**
 * The audit log carries out the policy's audit obligations: one JSON line per AuditEvent, on disk
 * before the decision is released; a decision whose record cannot be written is refused.
 */
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AuditLog,
  auditObligations,
  carryOutObligations,
  isBreakTheGlass,
  type AuditEvent,
  type AuditFile,
  type AuditObligation,
  type AuditRecord,
} from "../src/ops/audit.js";
import type { Decision, Obligation } from "../src/core/contract.js";
import { SmartAuthzError } from "../src/core/errors.js";
import { opaPath, root } from "./helpers/policy.js";

const NOW = "2026-11-22T10:00:00Z";
const CLOCK = () => new Date("2026-11-22T10:00:00.123Z");

/** V82: a clinician allowed to break the glass reads Observation/h1 (restricted, HIV). */
const BTG_INPUT = {
  claims: {
    scope: "user/*.rs",
    sub: "u1",
    fhirUser: "Practitioner/9",
    client_id: "ehr-app",
    roles: ["physician"],
    purpose_of_use: ["http://terminology.hl7.org/CodeSystem/v3-ActReason#BTG"],
    iat: 1795341600 - 120,
    jti: "jti-7",
    patient: "123",
  },
  request: {
    method: "GET",
    url: "Observation/h1",
    headers: { "x-btg-reason": "unconscious patient, suspected overdose", "x-request-id": "req-1" },
  },
  resource: {
    resourceType: "Observation",
    id: "h1",
    subject: { reference: "Patient/123" },
    meta: {
      security: [
        { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
        { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "HIV" },
      ],
    },
  },
  now: NOW,
};
const BTG_CONFIG = { config: { btg: { eligible: [{ roles: ["physician"] }] } } };

let dir: string;
let policyDir: string;
let btgObligation: AuditObligation;
let labelDenial: AuditObligation;

/** What the Rego policy (smart.label, evaluated by OPA itself) asks the host to record. */
function policyObligation(kind: string, outcome: string, input: unknown, config: unknown): AuditObligation {
  const configFile = join(policyDir, `config-${kind}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  const query = `data.smart.label.audit_obligation("${kind}", ["Observation/h1"], data.smart.label.protected_labels(input.resource), "${outcome}")`;
  const out = execFileSync(
    opaPath,
    ["eval", "-d", "policies", "-d", configFile, "--stdin-input", "--format", "json", query],
    { cwd: root, input: JSON.stringify(input), encoding: "utf8" },
  );
  const value = (JSON.parse(out) as { result?: { expressions: { value: AuditObligation }[] }[] }).result?.[0]
    ?.expressions[0]?.value;
  if (!value) throw new Error(`the policy gave no ${kind} obligation`);
  return value;
}

beforeAll(async () => {
  policyDir = await mkdtemp(join(tmpdir(), "smart-authz-audit-policy-"));
  btgObligation = policyObligation("btg-access", "0", BTG_INPUT, BTG_CONFIG);
  const clerk = { ...BTG_INPUT, claims: { ...BTG_INPUT.claims, roles: ["clerk"] } };
  labelDenial = policyObligation("label-denied", "4", clerk, BTG_CONFIG);
}, 60000);

afterAll(async () => {
  await rm(policyDir, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "smart-authz-audit-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const allow = (obligations: Obligation[] = []): Decision => ({ decision: "allow", reasons: [], obligations });

async function lines(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n"), "every record ends its line").toBe(true);
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as AuditRecord);
}

function expectAuditUnavailable(d: Decision): void {
  expect(d.decision).toBe("deny");
  expect(d.status).toBe(500);
  expect(d.reasons?.[0]?.code).toBe("audit-unavailable");
  expect(d.outcome).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "exception" }] });
  expect(d.obligations, "a refused decision carries nothing to act on").toBeUndefined();
}

describe("break-the-glass access", () => {
  it("writes the policy's AuditEvent as one JSON line before the decision is released", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path, { clock: CLOCK });
    const decision = allow([btgObligation]);

    const released = await carryOutObligations(decision, log, { decisionId: "d-1" });

    expect(released).toBe(decision);
    const records = await lines(path);
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record).toEqual({
      timestamp: "2026-11-22T10:00:00.123Z",
      decision_id: "d-1",
      event: btgObligation.event,
    });
    // What a security officer reads in the file (IHE BALP rest pattern, purpose of use BTG):
    const event = record!.event as Record<string, any>;
    expect(event).toMatchObject({
      resourceType: "AuditEvent",
      type: { code: "rest" },
      subtype: [{ system: "http://hl7.org/fhir/restful-interaction", code: "read" }],
      action: "R",
      recorded: NOW,
      outcome: "0",
      purposeOfEvent: [
        { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-ActReason", code: "BTG" }] },
      ],
      source: { observer: { display: "smart-authz" } },
    });
    expect(event.agent).toEqual([
      expect.objectContaining({ who: { identifier: { value: "ehr-app" } }, requestor: false }),
      expect.objectContaining({ who: { display: "fhir-server" }, requestor: false }),
      expect.objectContaining({
        who: { reference: "Practitioner/9", identifier: { value: "u1" } },
        requestor: true,
        policy: ["urn:ietf:params:oauth:jti:jti-7"],
        role: [{ text: "physician" }],
        purposeOfUse: [{ coding: [expect.objectContaining({ code: "BTG" })] }],
      }),
    ]);
    expect(event.entity[0]).toMatchObject({
      what: { reference: "Observation/h1" },
      securityLabel: [
        { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "HIV" },
        { system: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", code: "R" },
      ],
      detail: [{ type: "btg-reason", valueString: "unconscious patient, suspected overdose" }],
    });
    expect(event.entity[1]).toMatchObject({ what: { reference: "Patient/123" }, role: { code: "1" } });
    expect(event.entity[2]).toMatchObject({ what: { identifier: { value: "req-1" } } });
    expect(isBreakTheGlass(event as AuditEvent)).toBe(true);
  });

  it("flushes the record to disk (fsync) before resolving", async () => {
    const calls: string[] = [];
    const log = new AuditLog(join(dir, "audit.jsonl"), {
      sync: "btg",
      openFile: async (p, flags, mode) => {
        const { open } = await import("node:fs/promises");
        const handle = await open(p, flags, mode);
        return {
          appendFile: async (data, enc) => {
            calls.push("append");
            await handle.appendFile(data, enc);
          },
          sync: async () => {
            calls.push("sync");
            await handle.sync();
          },
          close: () => handle.close(),
        };
      },
    });
    await carryOutObligations(allow([btgObligation]), log);
    calls.push("released");
    expect(calls).toEqual(["append", "sync", "released"]);
    await carryOutObligations(allow([labelDenial]), log);
    expect(calls.slice(3), "a denied break-the-glass attempt is flushed too").toEqual(["append", "sync"]);
    const ordinary: AuditEvent = { resourceType: "AuditEvent", type: { code: "rest" }, outcome: "0" };
    await carryOutObligations(allow([{ type: "audit", event: ordinary }]), log);
    expect(calls.slice(5), "sync: btg skips the fsync for events without break-the-glass").toEqual([
      "append",
    ]);
  });

  it("records label denials as security alerts", async () => {
    const path = join(dir, "audit.jsonl");
    const denial: Decision = { decision: "deny", status: 404, reasons: [], obligations: [labelDenial] };
    expect(await carryOutObligations(denial, new AuditLog(path))).toBe(denial);
    const [record] = await lines(path);
    expect(record!.event).toMatchObject({
      type: { code: "110113", display: "Security Alert" },
      action: "E",
      outcome: "4",
      outcomeDesc: expect.stringContaining("btg-not-permitted"),
    });
  });
});

describe("the audit file", () => {
  it("is only ever appended to", async () => {
    const path = join(dir, "audit.jsonl");
    await writeFile(path, '{"earlier":"record"}\n');
    const log = new AuditLog(path, { clock: CLOCK });
    await carryOutObligations(allow([btgObligation]), log, { decisionId: "d-1" });
    await carryOutObligations(allow([labelDenial, btgObligation]), log, { decisionId: "d-2" });
    const text = await readFile(path, "utf8");
    expect(text.startsWith('{"earlier":"record"}\n')).toBe(true);
    const records = (await lines(path)).slice(1);
    expect(records.map((r) => r.decision_id)).toEqual(["d-1", "d-2", "d-2"]);
  });

  it("keeps concurrent decisions' records whole and in order", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path);
    const ids = Array.from({ length: 25 }, (_, i) => `d-${i}`);
    await Promise.all(ids.map((id) => carryOutObligations(allow([btgObligation]), log, { decisionId: id })));
    expect((await lines(path)).map((r) => r.decision_id)).toEqual(ids);
  });

  it("is created readable by its owner only", async () => {
    const path = join(dir, "audit.jsonl");
    await carryOutObligations(allow([btgObligation]), new AuditLog(path));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("audits every entry of a batch", async () => {
    const path = join(dir, "audit.jsonl");
    const batch: Decision = {
      decision: "filter",
      entries: [
        allow([btgObligation]),
        { decision: "deny", status: 404, obligations: [labelDenial] },
        allow(),
      ],
    };
    expect(auditObligations(batch)).toHaveLength(2);
    expect(await carryOutObligations(batch, new AuditLog(path))).toBe(batch);
    expect((await lines(path)).map((r) => r.event.type)).toEqual([
      expect.objectContaining({ code: "rest" }),
      expect.objectContaining({ code: "110113" }),
    ]);
  });

  it("fills in `recorded` when the policy had no clock", async () => {
    const path = join(dir, "audit.jsonl");
    const event = { ...btgObligation.event };
    delete event.recorded;
    await carryOutObligations(allow([{ type: "audit", event }]), new AuditLog(path, { clock: CLOCK }));
    expect((await lines(path))[0]!.event.recorded).toBe("2026-11-22T10:00:00.123Z");
  });

  it("is not touched by decisions without audit obligations", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path);
    const plain = allow([{ type: "filter-response", reason: "includes" }]);
    expect(await carryOutObligations(plain, log)).toBe(plain);
    expect(await carryOutObligations({ decision: "deny", status: 403 }, log)).toEqual({
      decision: "deny",
      status: 403,
    });
    expect(existsSync(path)).toBe(false);
  });

  it("follows a rotated file after reopen()", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path);
    await carryOutObligations(allow([btgObligation]), log, { decisionId: "before" });
    await rename(path, `${path}.1`);
    await log.reopen();
    await carryOutObligations(allow([btgObligation]), log, { decisionId: "after" });
    expect((await lines(`${path}.1`)).map((r) => r.decision_id)).toEqual(["before"]);
    expect((await lines(path)).map((r) => r.decision_id)).toEqual(["after"]);
  });
});

describe("fail closed", () => {
  it("refuses the access when the audit path is a directory", async () => {
    const path = join(dir, "audit.jsonl");
    await mkdir(path);
    const errors: SmartAuthzError[] = [];
    const d = await carryOutObligations(allow([btgObligation]), new AuditLog(path), {
      onError: (e) => errors.push(e),
    });
    expectAuditUnavailable(d);
    expect(errors[0]?.code).toBe("AUDIT_WRITE_FAILED");
    expect(errors[0]?.details).toMatchObject({ path, cause: "EISDIR" });
  });

  it("refuses the access when the audit directory does not exist or is a file", async () => {
    await writeFile(join(dir, "file"), "");
    for (const path of [join(dir, "missing", "audit.jsonl"), join(dir, "file", "audit.jsonl")]) {
      expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), new AuditLog(path)));
    }
  });

  it.skipIf(process.getuid?.() === 0)(
    "refuses the access when the audit directory is read-only",
    async () => {
      const { chmod } = await import("node:fs/promises");
      await chmod(dir, 0o500);
      try {
        expectAuditUnavailable(
          await carryOutObligations(allow([btgObligation]), new AuditLog(join(dir, "audit.jsonl"))),
        );
      } finally {
        await chmod(dir, 0o700);
      }
    },
  );

  it.skipIf(!existsSync("/sys/kernel"))(
    "refuses the access in a directory nobody may create files in (sysfs)",
    async () => {
      const errors: SmartAuthzError[] = [];
      const d = await carryOutObligations(
        allow([btgObligation]),
        new AuditLog("/sys/smart-authz-audit.jsonl"),
        {
          onError: (e) => errors.push(e),
        },
      );
      expectAuditUnavailable(d);
      expect(errors[0]?.details).toMatchObject({ cause: "EACCES" });
    },
  );

  it.skipIf(!existsSync("/dev/full"))("refuses the access when the disk is full", async () => {
    expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), new AuditLog("/dev/full")));
  });

  it("refuses the access when fsync fails, and recovers on a fresh line afterwards", async () => {
    const path = join(dir, "audit.jsonl");
    const { open } = await import("node:fs/promises");
    let failNext: "append" | "sync" | undefined = "sync";
    const log = new AuditLog(path, {
      openFile: async (p, flags, mode): Promise<AuditFile> => {
        const handle = await open(p, flags, mode);
        return {
          appendFile: async (data, enc) => {
            if (failNext === "append") {
              failNext = undefined;
              await handle.appendFile(data.slice(0, 20), enc); // a torn write
              throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
            }
            await handle.appendFile(data, enc);
          },
          sync: async () => {
            if (failNext === "sync") {
              failNext = undefined;
              throw Object.assign(new Error("I/O error"), { code: "EIO" });
            }
            await handle.sync();
          },
          close: () => handle.close(),
        };
      },
    });
    expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), log, { decisionId: "a" }));
    failNext = "append";
    expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), log, { decisionId: "b" }));
    const ok = allow([btgObligation]);
    expect(await carryOutObligations(ok, log, { decisionId: "c" })).toBe(ok);
    const text = await readFile(path, "utf8");
    const complete = text
      .split("\n")
      .filter((l) => l.startsWith("{") && l.endsWith("}"))
      .map((l) => (JSON.parse(l) as AuditRecord).decision_id);
    expect(complete, "the torn line does not swallow the next record").toEqual(["a", "c"]);
  });

  it("refuses the access when no audit log is configured", async () => {
    expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), undefined));
  });

  it("refuses the access when an audit obligation carries no AuditEvent", async () => {
    const log = new AuditLog(join(dir, "audit.jsonl"));
    for (const bad of [
      { type: "audit" },
      { type: "audit", event: { resourceType: "Patient" } },
      { type: "audit", event: [] },
    ]) {
      expectAuditUnavailable(await carryOutObligations(allow([bad]), log));
    }
    expect(existsSync(join(dir, "audit.jsonl"))).toBe(false);
  });

  it("refuses the access after the log was closed", async () => {
    const log = new AuditLog(join(dir, "audit.jsonl"));
    await log.close();
    expectAuditUnavailable(await carryOutObligations(allow([btgObligation]), log));
    await expect(log.append([btgObligation.event], "x")).rejects.toMatchObject({
      code: "AUDIT_WRITE_FAILED",
    });
  });

  it("rejects appends with a typed error", async () => {
    const path = join(dir, "audit.jsonl");
    await mkdir(path);
    const err = await new AuditLog(path)
      .append([{ resourceType: "AuditEvent" }], "x")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthzError);
    expect((err as SmartAuthzError).code).toBe("AUDIT_WRITE_FAILED");
  });
});
