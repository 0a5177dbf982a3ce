// Parity host for Node: @open-policy-agent/opa-wasm (the version pinned in the root package.json) on V8.
//   node hosts/node/host.mjs <bundle dir> <cases.json> [out.json]
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import opa from "@open-policy-agent/opa-wasm";

// Non-native builtins this host supplies (name -> implementation). The policy is meant to need none.
const HOST_BUILTINS = {};

const [dir, casesPath, outPath] = process.argv.slice(2);
if (!dir || !casesPath) throw new Error("usage: host.mjs <bundle dir> <cases.json> [out.json]");
// The service's memory settings (src/policy/engine.ts DEFAULT_MEMORY): 64 KiB pages, 2 MiB to 256 MiB.
const memory = { initial: 32, maximum: 4096 };
const policy = await opa.loadPolicy(readFileSync(join(dir, "policy.wasm")), memory, HOST_BUILTINS);

// builtins() names every builtin the module calls out to the host for; refuse any we do not supply
// (opa-wasm would otherwise quietly use its own JS versions of sprintf, regex.*, yaml.* and others).
const { exports } = policy.wasmInstance;
const bytes = new Uint8Array(policy.mem.buffer);
const at = exports.opa_json_dump(exports.builtins());
const required = JSON.parse(new TextDecoder().decode(bytes.subarray(at, bytes.indexOf(0, at))));
const missing = Object.keys(required)
  .filter((b) => !(b in HOST_BUILTINS))
  .sort();
if (missing.length) {
  console.error(`parity-node: policy.wasm needs builtins this host does not supply: ${missing.join(", ")}`);
  process.exit(1);
}

const dataPath = join(dir, "data.json");
policy.setData(existsSync(dataPath) ? JSON.parse(readFileSync(dataPath, "utf8")) : {});
const out = JSON.parse(readFileSync(casesPath, "utf8")).map(({ id, entrypoint, input }) => {
  try {
    const rs = policy.evaluate(input, entrypoint);
    return rs.length ? { id, result: rs[0].result } : { id, undefined: true };
  } catch (e) {
    return { id, error: String(e?.message ?? e) };
  }
});
outPath ? writeFileSync(outPath, JSON.stringify(out)) : process.stdout.write(JSON.stringify(out) + "\n");
