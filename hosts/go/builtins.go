package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostBuiltins lists the non-native builtins this host supplies to policy.wasm. The project's
// policy is written to need none. OPA's Go wasm engine would quietly supply any builtin it has a
// topdown implementation for; the Node, Java and Python hosts would not, so this host refuses
// a module that needs anything not listed here, exactly as they do. See hosts/README.md.
var hostBuiltins = map[string]bool{}

// checkBuiltins instantiates the module on its own (wazero, stub imports), asks its builtins()
// export which host builtins it calls, and fails if any is not in hostBuiltins.
func checkBuiltins(ctx context.Context, policy []byte) error {
	names, err := requiredBuiltins(ctx, policy)
	if err != nil {
		return fmt.Errorf("reading builtins() from policy.wasm: %w", err)
	}
	var missing []string
	for _, n := range names {
		if !hostBuiltins[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("policy.wasm needs builtins this host does not supply: %s", strings.Join(missing, ", "))
	}
	return nil
}

func requiredBuiltins(ctx context.Context, policy []byte) ([]string, error) {
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	var mem api.Memory
	h := r.NewHostModuleBuilder("host")
	h.NewFunctionBuilder().WithFunc(func(_ context.Context, addr int32) {
		panic("opa_abort: " + cString(mem, uint32(addr)))
	}).Export("opa_abort")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32) {}).Export("opa_println")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32, int32) int32 { panic("builtin called") }).Export("opa_builtin0")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32, int32, int32) int32 { panic("builtin called") }).Export("opa_builtin1")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32, int32, int32, int32) int32 { panic("builtin called") }).Export("opa_builtin2")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32, int32, int32, int32, int32) int32 { panic("builtin called") }).Export("opa_builtin3")
	h.NewFunctionBuilder().WithFunc(func(context.Context, int32, int32, int32, int32, int32, int32) int32 { panic("builtin called") }).Export("opa_builtin4")
	if _, err := h.Instantiate(ctx); err != nil {
		return nil, err
	}
	if _, err := r.InstantiateWithConfig(ctx, envGlue(), wazero.NewModuleConfig().WithName("env")); err != nil {
		return nil, fmt.Errorf("env module: %w", err)
	}
	mod, err := r.InstantiateWithConfig(ctx, policy, wazero.NewModuleConfig().WithName("policy"))
	if err != nil {
		return nil, err
	}
	mem = mod.Memory()
	call := func(name string, args ...uint64) (uint32, error) {
		f := mod.ExportedFunction(name)
		if f == nil {
			return 0, fmt.Errorf("no export %q", name)
		}
		res, err := f.Call(ctx, args...)
		if err != nil {
			return 0, err
		}
		return uint32(res[0]), nil
	}
	addr, err := call("builtins")
	if err != nil {
		return nil, err
	}
	str, err := call("opa_json_dump", uint64(addr))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(cString(mem, str)))
	var m map[string]json.Number
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func cString(mem api.Memory, addr uint32) string {
	if mem == nil || addr >= mem.Size() {
		return "(unreadable)"
	}
	b, _ := mem.Read(addr, mem.Size()-addr)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// envGlue is a tiny wasm module named "env" that owns the linear memory the policy imports
// (env.memory) and re-exports the host functions under the names the policy imports. wazero's
// host modules cannot export a memory, hence this hand-assembled module.
func envGlue() []byte {
	const i32 = 0x7f
	sig := func(params, results int) []byte {
		b := []byte{0x60, byte(params)}
		for i := 0; i < params; i++ {
			b = append(b, i32)
		}
		b = append(b, byte(results))
		for i := 0; i < results; i++ {
			b = append(b, i32)
		}
		return b
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, count int, body []byte) []byte {
		content := append(uleb(uint32(count)), body...)
		return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
	}
	funcs := []struct {
		name string
		typ  byte
	}{{"opa_abort", 0}, {"opa_println", 0}, {"opa_builtin0", 1}, {"opa_builtin1", 2}, {"opa_builtin2", 3}, {"opa_builtin3", 4}, {"opa_builtin4", 5}}
	var types []byte
	types = append(types, sig(1, 0)...)
	for n := 2; n <= 6; n++ {
		types = append(types, sig(n, 1)...)
	}
	var imports, exports []byte
	for i, f := range funcs {
		imports = append(append(append(imports, name("host")...), name(f.name)...), 0x00, f.typ)
		exports = append(append(exports, name(f.name)...), 0x00, byte(i))
	}
	exports = append(append(exports, name("memory")...), 0x02, 0x00)
	memory := append([]byte{0x00}, uleb(2)...) // min 2 pages, no max: what OPA-compiled modules import
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, 6, types)...)
	out = append(out, section(2, len(funcs), imports)...)
	out = append(out, section(5, 1, memory)...)
	out = append(out, section(7, len(funcs)+1, exports)...)
	return out
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
		} else {
			return append(b, c)
		}
	}
}
