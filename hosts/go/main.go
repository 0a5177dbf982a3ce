// Parity host for Go, built on OPA's own Go API (OPA v1.20.2).
//
//	parity-go <bundle dir> <cases.json> [out.json]             evaluates the bundle's policy.wasm
//	parity-go --topdown <policy dir> <cases.json> [out.json]   evaluates the Rego with OPA's topdown evaluator
//
// In the default (wasm) mode only policy.wasm and data.json are read from the bundle dir; the
// .rego files that `opa build -t wasm` also packs into the bundle are never opened, so every
// decision comes from the compiled module (run by OPA's wazero-based wasm engine through the
// public resolver/wasm package). The --topdown mode is the reference the other hosts are compared to.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	_ "github.com/open-policy-agent/opa/v1/features/wasm" // registers the wasm engine used by resolver/wasm
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/resolver"
	wasmresolver "github.com/open-policy-agent/opa/v1/resolver/wasm"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

type testCase struct {
	ID         string `json:"id"`
	Entrypoint string `json:"entrypoint"`
	Input      any    `json:"input"`
}

type outcome struct {
	ID        string `json:"id"`
	Result    any    `json:"result,omitempty"`
	Undefined bool   `json:"undefined,omitempty"`
	Error     string `json:"error,omitempty"`
}

// evaluator returns (value, defined, error) for one entrypoint and input.
type evaluator func(ctx context.Context, entrypoint string, input ast.Value) (ast.Value, bool, error)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "parity-go:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	topdown := len(args) > 0 && args[0] == "--topdown"
	if topdown {
		args = args[1:]
	}
	if len(args) < 2 || len(args) > 3 {
		return errors.New("usage: parity-go [--topdown] <bundle-or-policy dir> <cases.json> [out.json]")
	}
	cases, err := readCases(args[1])
	if err != nil {
		return err
	}
	eps := map[string]bool{}
	for _, c := range cases {
		eps[c.Entrypoint] = true
	}
	ctx := context.Background()
	var eval evaluator
	if topdown {
		eval, err = newTopdown(ctx, args[0], eps)
	} else {
		eval, err = newWasm(ctx, args[0], eps)
	}
	if err != nil {
		return err
	}
	out := make([]outcome, 0, len(cases))
	for _, c := range cases {
		o := outcome{ID: c.ID}
		in, err := ast.InterfaceToValue(c.Input)
		if err == nil {
			var v ast.Value
			var defined bool
			v, defined, err = eval(ctx, c.Entrypoint, in)
			if err == nil && defined {
				o.Result, err = ast.JSON(v)
			} else if err == nil {
				o.Undefined = true
			}
		}
		if err != nil {
			o.Error = err.Error()
		}
		out = append(out, o)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	if len(args) == 3 {
		return os.WriteFile(args[2], buf.Bytes(), 0o644)
	}
	_, err = os.Stdout.Write(buf.Bytes())
	return err
}

func readCases(path string) ([]testCase, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers exactly as written
	var cases []testCase
	if err := dec.Decode(&cases); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cases, nil
}

// newWasm loads <dir>/policy.wasm and <dir>/data.json (nothing else) into OPA's wasm engine.
func newWasm(ctx context.Context, dir string, eps map[string]bool) (evaluator, error) {
	policy, err := os.ReadFile(filepath.Join(dir, "policy.wasm"))
	if err != nil {
		return nil, err
	}
	var data any = map[string]any{}
	if raw, err := os.ReadFile(filepath.Join(dir, "data.json")); err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return nil, fmt.Errorf("data.json: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := checkBuiltins(ctx, policy); err != nil {
		return nil, err
	}
	refs := map[string]ast.Ref{}
	var list []ast.Ref
	for ep := range eps {
		ref, err := entrypointRef(ep)
		if err != nil {
			return nil, err
		}
		refs[ep] = ref
		list = append(list, ref)
	}
	r, err := wasmresolver.NewWithContext(ctx, list, policy, data)
	if err != nil {
		return nil, fmt.Errorf("loading policy.wasm: %w", err)
	}
	// The resolver silently skips entrypoints the module does not export; check them here.
	for ep, ref := range refs {
		if _, err := r.Eval(ctx, resolver.Input{Ref: ref, Input: ast.NewTerm(ast.NewObject())}); err != nil && strings.Contains(err.Error(), "unknown entrypoint") {
			return nil, fmt.Errorf("policy.wasm has no entrypoint %q", ep)
		}
	}
	return func(ctx context.Context, ep string, in ast.Value) (ast.Value, bool, error) {
		res, err := r.Eval(ctx, resolver.Input{Ref: refs[ep], Input: ast.NewTerm(in)})
		if err != nil {
			return nil, false, err
		}
		return res.Value, res.Value != nil, nil
	}, nil
}

// newTopdown loads the Rego and data.json files under dir once (tests excluded, as `make build`
// does) and prepares one query per entrypoint for OPA's topdown evaluator.
func newTopdown(ctx context.Context, dir string, eps map[string]bool) (evaluator, error) {
	ignoreTests := func(_ string, info fs.FileInfo, _ int) bool {
		return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
	}
	loaded, err := loader.NewFileLoader().Filtered([]string{dir}, ignoreTests)
	if err != nil {
		return nil, err
	}
	compiler, err := loaded.Compiler()
	if err != nil {
		return nil, err
	}
	store, err := loaded.StoreWithOpts(inmem.OptReturnASTValuesOnRead(true)) // no per-eval conversion of large data
	if err != nil {
		return nil, err
	}
	queries := map[string]rego.PreparedEvalQuery{}
	for ep := range eps {
		ref, err := entrypointRef(ep)
		if err != nil {
			return nil, err
		}
		pq, err := rego.New(rego.Query(ref.String()), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("preparing %s: %w", ep, err)
		}
		queries[ep] = pq
	}
	return func(ctx context.Context, ep string, in ast.Value) (ast.Value, bool, error) {
		rs, err := queries[ep].Eval(ctx, rego.EvalParsedInput(in))
		if err != nil || len(rs) == 0 {
			return nil, false, err
		}
		v, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
		return v, err == nil, err
	}, nil
}

// entrypointRef turns "smart/api/decision" into data.smart.api.decision.
func entrypointRef(ep string) (ast.Ref, error) {
	ref := ast.Ref{ast.DefaultRootDocument}
	for _, p := range strings.Split(ep, "/") {
		if p == "" {
			return nil, fmt.Errorf("bad entrypoint %q", ep)
		}
		ref = append(ref, ast.StringTerm(p))
	}
	return ref, nil
}
