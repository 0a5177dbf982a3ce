package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	minPages, maxPages, err := memoryLimits(policy)
	if err != nil {
		return nil, err
	}
	if _, err := r.InstantiateWithConfig(ctx, envGlue(minPages, maxPages), wazero.NewModuleConfig().WithName("env")); err != nil {
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
func envGlue(minPages uint32, maxPages *uint32) []byte {
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
	// The memory must match what the policy imports: its data segments need at least minPages.
	memory := append([]byte{0x00}, uleb(minPages)...)
	if maxPages != nil {
		memory = append(append([]byte{0x01}, uleb(minPages)...), uleb(*maxPages)...)
	}
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

// memoryLimits returns the limits for the memory given to the module: those of its env.memory
// import, with the minimum raised to cover its active data segments. (OPA v1.20.2 can emit an
// import minimum of 2 pages for a module whose data segments end beyond 2 pages; the SDKs only
// work because they start with more memory: 5 pages in JS, 10 in Java, 16 in OPA's Go engine.)
func memoryLimits(wasm []byte) (uint32, *uint32, error) {
	bad := errors.New("policy.wasm: malformed module")
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return 0, nil, bad
	}
	pos := 8
	fail := false
	read := func() uint32 { // unsigned LEB128
		var v uint32
		for shift := 0; shift < 35; shift += 7 {
			if pos >= len(wasm) {
				break
			}
			b := wasm[pos]
			pos++
			v |= uint32(b&0x7f) << shift
			if b&0x80 == 0 {
				return v
			}
		}
		fail = true
		return 0
	}
	byteAt := func() byte {
		if pos >= len(wasm) {
			fail = true
			return 0
		}
		pos++
		return wasm[pos-1]
	}
	name := func() string {
		n := int(read())
		if fail || pos+n > len(wasm) {
			fail = true
			return ""
		}
		pos += n
		return string(wasm[pos-n : pos])
	}
	limits := func() (uint32, *uint32) {
		flag := byteAt()
		lo := read()
		if flag&1 == 1 {
			hi := read()
			return lo, &hi
		}
		return lo, nil
	}
	var minPages uint32
	var maxPages *uint32
	imported := false
	var dataEnd uint64
	for pos < len(wasm) && !fail {
		id := byteAt()
		size := int(read())
		end := pos + size
		if fail || end > len(wasm) {
			return 0, nil, bad
		}
		switch id {
		case 2: // imports
			for n := read(); n > 0 && !fail; n-- {
				mod, field := name(), name()
				switch byteAt() {
				case 0x00: // function
					read()
				case 0x01: // table
					byteAt()
					limits()
				case 0x02: // memory
					lo, hi := limits()
					if mod == "env" && field == "memory" {
						minPages, maxPages, imported = lo, hi, true
					}
				case 0x03: // global
					byteAt()
					byteAt()
				default:
					fail = true
				}
			}
		case 11: // data: active segments at an i32.const offset into memory 0
			for n := read(); n > 0 && !fail; n-- {
				flag := read()
				if flag == 1 { // passive
					pos += int(read())
					continue
				}
				if flag == 2 {
					read() // memory index
				}
				if byteAt() != 0x41 { // i32.const
					fail = true
					break
				}
				offset := uint64(uint32(read())) // sign-extended i32, taken as unsigned
				byteAt()                         // end
				length := read()
				pos += int(length)
				dataEnd = max(dataEnd, offset+uint64(length))
			}
		}
		pos = end
	}
	if fail {
		return 0, nil, bad
	}
	if !imported {
		return 0, nil, errors.New("policy.wasm does not import env.memory")
	}
	need := uint32((dataEnd + 65535) / 65536)
	minPages = max(minPages, need)
	if maxPages != nil && *maxPages < minPages {
		return 0, nil, fmt.Errorf("policy.wasm: data needs %d pages but memory is capped at %d", minPages, *maxPages)
	}
	return minPages, maxPages, nil
}
