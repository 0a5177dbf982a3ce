// Records what `make policy` built, beside the bundle: the bundle's revision and the OPA version
// that compiled it (`smart-authz version` prints both). Usage: node scripts/build-info.mjs <opa binary>
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const opa = process.argv[2] ?? "opa";
const revision = JSON.parse(readFileSync("build/bundle/.manifest", "utf8")).revision;
const opaVersion = /^Version: (\S+)/m.exec(execFileSync(opa, ["version"], { encoding: "utf8" }))?.[1];
writeFileSync("build/build-info.json", `${JSON.stringify({ revision, opa_version: opaVersion ?? null })}\n`);
console.log(`built build/bundle.tar.gz (revision ${revision}, OPA ${opaVersion ?? "unknown"})`);
