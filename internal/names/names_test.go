package names_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// The packages that do not import names yet must agree with it.
func TestIdentityAndEscapeAgree(t *testing.T) {
	if !slices.Equal(identity.LabelNames, names.IdentityLabels) {
		t.Errorf("identity.LabelNames %v, names.IdentityLabels %v", identity.LabelNames, names.IdentityLabels)
	}
	if escape.Blocked != names.ResultBlocked || escape.Allowed != names.ResultAllowed {
		t.Errorf("escape results %q/%q, names %q/%q", escape.Blocked, escape.Allowed, names.ResultBlocked, names.ResultAllowed)
	}
	if !slices.Equal(names.RestartIdentityLabels, names.IdentityLabels[1:]) {
		t.Errorf("restart identity %v is not the identity without container_id", names.RestartIdentityLabels)
	}
}

func TestListsComplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
	}{
		{"BreakwaterMetrics", names.BreakwaterMetrics}, {"CAdvisorMetrics", names.CAdvisorMetrics},
		{"Alerts", names.Alerts}, {"Records", names.Records}, {"Techniques", names.Techniques},
	} {
		seen := map[string]bool{}
		for _, n := range tc.list {
			if n == "" || seen[n] {
				t.Errorf("%s: empty or duplicate %q", tc.name, n)
			}
			seen[n] = true
		}
	}
	for _, m := range names.BreakwaterMetrics {
		if !strings.HasPrefix(m, names.Namespace+"_") {
			t.Errorf("%s lacks the %s_ prefix", m, names.Namespace)
		}
	}
	for _, a := range names.PushedAlerts {
		if !slices.Contains(names.Alerts, a) {
			t.Errorf("pushed alert %s is not an alert of the pack", a)
		}
	}
}

// knownLabels are the label names metric descriptions may use.
var knownLabels = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range append(slices.Clone(names.IdentityLabels),
		names.LabelCgroupID, names.LabelSyscall, names.LabelErrno, names.LabelReason, names.LabelOperation,
		names.LabelNamespaceType, names.LabelCapability, names.LabelScope, names.LabelTechnique, names.LabelResult,
		names.LabelProgram, names.LabelHook, names.LabelCollector, names.LabelState, names.LabelFile) {
		m[l] = true
	}
	return m
}()

// TestCollectorsUseContractNames reads the metric descriptions in the
// exporter's source (collectors/, exporter/) and fails on a metric or label
// name this package does not know. It evaluates the constant expressions
// those packages build names from: string literals, Namespace, +,
// prometheus.BuildFQName, security's desc(name, help, labels...) and
// prometheus.NewDesc / *Opts{Name: ...}. Names spelt with this package's
// constants are checked by the compiler instead.
func TestCollectorsUseContractNames(t *testing.T) {
	root := testenv.RepoRoot(t)
	metrics := map[string]bool{}
	for _, m := range names.BreakwaterMetrics {
		metrics[m] = true
	}
	found := 0
	for _, dir := range []string{"collectors", "exporter", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					metric, labels, ok := describe(n)
					if !ok {
						return true
					}
					found++
					if !metrics[metric] {
						t.Errorf("%s: metric %q is not in names.BreakwaterMetrics", rel, metric)
					}
					for _, l := range labels {
						if !knownLabels[l] {
							t.Errorf("%s: metric %s has label %q, unknown to package names", rel, metric, l)
						}
					}
				case *ast.CompositeLit:
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Opts") {
						for _, e := range n.Elts {
							kv, ok := e.(*ast.KeyValueExpr)
							if k, _ := kv.Key.(*ast.Ident); ok && k != nil && k.Name == "Name" {
								if name, ok := constString(kv.Value); ok && strings.HasPrefix(name, names.Namespace+"_") {
									found++
									if !metrics[name] {
										t.Errorf("%s: metric %q is not in names.BreakwaterMetrics", rel, name)
									}
								}
							}
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The scan must see something, or it checks nothing.
	if found < 5 {
		t.Errorf("found only %d metric descriptions in the source: the scan no longer understands it", found)
	}
}

// describe evaluates a metric description call: security's desc helper or
// prometheus.NewDesc with a constant name.
func describe(call *ast.CallExpr) (metric string, labels []string, ok bool) {
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		if fn.Name != "desc" || len(call.Args) < 2 {
			return "", nil, false
		}
		name, ok := constString(call.Args[0])
		if !ok {
			return "", nil, false
		}
		for _, a := range call.Args[2:] {
			if l, ok := constString(a); ok {
				labels = append(labels, l)
			}
		}
		return names.Namespace + "_" + name, labels, true
	case *ast.SelectorExpr:
		if fn.Sel.Name != "NewDesc" || len(call.Args) < 3 {
			return "", nil, false
		}
		name, ok := constString(call.Args[0])
		if !ok || !strings.HasPrefix(name, names.Namespace+"_") {
			return "", nil, false
		}
		if lit, ok := call.Args[2].(*ast.CompositeLit); ok {
			for _, e := range lit.Elts {
				if l, ok := constString(e); ok {
					labels = append(labels, l)
				}
			}
		}
		return name, labels, true
	}
	return "", nil, false
}

// constString evaluates string literals, Namespace, + and BuildFQName.
func constString(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		return names.Namespace, e.Name == "Namespace"
	case *ast.SelectorExpr:
		return names.Namespace, e.Sel.Name == "Namespace"
	case *ast.BinaryExpr:
		a, ok1 := constString(e.X)
		b, ok2 := constString(e.Y)
		return a + b, ok1 && ok2 && e.Op == token.ADD
	case *ast.ParenExpr:
		return constString(e.X)
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "BuildFQName" && len(e.Args) == 3 {
			var parts []string
			for _, a := range e.Args {
				s, ok := constString(a)
				if !ok {
					return "", false
				}
				if s != "" {
					parts = append(parts, s)
				}
			}
			return strings.Join(parts, "_"), true
		}
	}
	return "", false
}
