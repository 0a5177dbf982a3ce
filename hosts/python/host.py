"""Parity host for CPython: opa-py-wasm (import name opapywasm) on wasmtime-py.

    hosts/python/.venv/bin/python hosts/python/host.py <bundle dir> <cases.json> [out.json]
"""

import json
import sys
from pathlib import Path

import opapywasm.runtime
import wasmtime
from opapywasm import UNDEFINED, OpaWasmPolicy, PolicyConfig

# Non-native builtins this host supplies (name -> callable). The policy is meant to need none.
HOST_BUILTINS: dict = {}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: host.py <bundle dir> <cases.json> [out.json]", file=sys.stderr)
        return 2
    bundle = Path(argv[0])
    wasm = (bundle / "policy.wasm").read_bytes()
    # Workaround for opa-py-wasm 1.2.1: it always offers a 2-page env.memory and retries larger only
    # when data segments overflow, so a module whose memory import asks for more than 2 pages fails
    # with "incompatible import type for env::memory". Start at the module's own minimum instead.
    for imp in wasmtime.Module(wasmtime.Engine(), wasm).imports:
        if imp.module == "env" and imp.name == "memory" and isinstance(imp.type, wasmtime.MemoryType):
            opapywasm.runtime._DEFAULT_MEMORY_PAGES = max(opapywasm.runtime._DEFAULT_MEMORY_PAGES, imp.type.limits.min)
    policy = OpaWasmPolicy.from_wasm_bytes(wasm, PolicyConfig(pool_size=1, eval_timeout_seconds=60.0))

    # builtins() of the module: every builtin it calls out to the host for. opa-py-wasm would quietly
    # offer its own defaults (sprintf, yaml.*); this host supplies exactly HOST_BUILTINS.
    missing = sorted(set(policy.builtins) - set(HOST_BUILTINS))
    if missing:
        print(f"parity-python: policy.wasm needs builtins this host does not supply: {', '.join(missing)}", file=sys.stderr)
        return 1
    for name, fn in HOST_BUILTINS.items():
        policy.register_builtin(name, fn)

    data = bundle / "data.json"
    policy.set_data(data.read_bytes() if data.exists() else b"{}")  # raw bytes: loaded as-is

    out = []
    for case in json.loads(Path(argv[1]).read_text(encoding="utf-8")):
        o = {"id": case["id"]}
        try:
            result = policy.evaluate(case.get("input"), case["entrypoint"])
            if result is UNDEFINED:
                o["undefined"] = True
            else:
                o["result"] = result
        except Exception as e:  # noqa: BLE001 - every failure is reported per case
            o["error"] = f"{type(e).__name__}: {e}"
        out.append(o)
    policy.close()
    text = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
    if len(argv) == 3:
        Path(argv[2]).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
