// Summarises `opa test --coverage --format=json`: overall percentage and the least covered files.
// Fails when coverage is below COVERAGE_MIN (default 95) percent.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync(process.argv[2], "utf8"));
const min = Number(process.env.COVERAGE_MIN ?? 95);
const files = Object.entries(report.files ?? {})
  .filter(([name]) => !name.endsWith("_test.rego"))
  .map(([name, f]) => ({ name, coverage: f.coverage ?? 0, notCovered: (f.not_covered ?? []).length }))
  .sort((a, b) => a.coverage - b.coverage);
const total = report.coverage ?? 0;
console.log(`Rego coverage: ${total.toFixed(2)}% over ${files.length} policy files (minimum ${min}%)`);
for (const f of files.filter((f) => f.coverage < 100).slice(0, 8)) {
  console.log(`  ${f.coverage.toFixed(1).padStart(5)}%  ${f.name}  (${f.notCovered} uncovered ranges)`);
}
if (total < min) {
  console.error(`coverage ${total.toFixed(2)}% is below ${min}%`);
  process.exit(1);
}
