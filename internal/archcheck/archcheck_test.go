package archcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn"
)

const module = "github.com/certify-mli/certify"

// root returns the module's directory.
func root(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// exempt are the files outside nn/ allowed to name layer types in a switch,
// with the reason. They write model.json documents; they do not interpret
// layers.
var exempt = map[string]string{
	// DrawSpec draws random model.json specs for the fuzz and property
	// tests: choosing the keys of a type it drew is writing a spec.
	"internal/testnets/specgen.go": "draws model.json specs",
}

// layerStructs returns the concrete layer types of package nn: the
// receivers of a Jet(p, dp []*Tensor, in *Jet) *Jet method (nn.Layer's).
func layerStructs(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "nn", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Name.Name != "Jet" || fd.Type.Params.NumFields() != 3 {
				continue
			}
			rt := fd.Recv.List[0].Type
			if s, ok := rt.(*ast.StarExpr); ok {
				rt = s.X
			}
			if id, ok := rt.(*ast.Ident); ok && ast.IsExported(id.Name) {
				out = append(out, id.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// isTypeSelector reports whether e is x.Type or x.Type() (a layer's or a
// LayerSpec's type name).
func isTypeSelector(e ast.Expr) bool {
	if c, ok := e.(*ast.CallExpr); ok && len(c.Args) == 0 {
		e = c.Fun
	}
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == "Type"
}

// nnType returns X when e is nn.X or *nn.X.
func nnType(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if s, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := s.X.(*ast.Ident); ok && id.Name == "nn" {
			return s.Sel.Name
		}
	}
	return ""
}

// The first structure rule: outside nn/, no non-test source file
// switches on a layer type string, compares a Type/Type() to a string, or
// asserts (or type-switches to) a concrete nn layer type. The check is
// planted-fault tested by TestRuleCatches.
func TestNoLayerTypeSwitchesOutsideNN(t *testing.T) {
	dir := root(t)
	layers := layerStructs(t, dir)
	if !slices.Contains(layers, "Dense") || !slices.Contains(layers, "Residual") {
		t.Fatalf("found layer types %v: the Jet-receiver scan is broken", layers)
	}
	var bad []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case rel == "nn", strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", d.Name() == "tools":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		if _, ok := exempt[rel]; ok {
			return nil
		}
		src, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		for _, v := range violations(src, layers) {
			bad = append(bad, rel+": "+v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("%s (declare a property in nn instead: nn/props.go, nn/permute.go)", b)
	}
}

// violations lists the rule's breaches in one parsed file.
func violations(f *ast.File, layers []string) []string {
	var out []string
	isLayerString := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(b.Value)
		return s, err == nil && slices.Contains(nn.LayerTypes, s)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SwitchStmt:
			if n.Tag != nil && isTypeSelector(n.Tag) {
				out = append(out, "switch on a layer's Type")
			}
			for _, c := range n.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if s, ok := isLayerString(e); ok {
						out = append(out, "case "+strconv.Quote(s))
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				break
			}
			for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
				if b, ok := pair[1].(*ast.BasicLit); ok && b.Kind == token.STRING && isTypeSelector(pair[0]) {
					out = append(out, "Type compared with "+b.Value)
				}
			}
		case *ast.TypeAssertExpr:
			if x := nnType(n.Type); x != "" && slices.Contains(layers, x) {
				out = append(out, "type assertion to nn."+x)
			}
		case *ast.TypeSwitchStmt:
			for _, c := range n.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if x := nnType(e); x != "" && slices.Contains(layers, x) {
						out = append(out, "type switch case nn."+x)
					}
				}
			}
		}
		return true
	})
	return out
}

// The rule's check finds each kind of breach it is meant to find, and
// passes code that reads declared properties.
func TestRuleCatches(t *testing.T) {
	layers := []string{"Conv2d", "Dense"}
	for _, c := range []struct {
		src  string
		want int
	}{
		{`switch ls.Type { case "conv2d", "linear": }`, 3},
		{`switch typ { case "residual": }`, 1},
		{`if l.Type() == "batchnorm1d" {}`, 1},
		{`if "flatten" != ls.Type {}`, 1},
		{`_ = l.(*nn.Dense)`, 1},
		{`switch l.(type) { case *nn.Conv2d, nn.Block: }`, 1},
		{`_ = l.(nn.Block); _ = p.Get().(*nn.Workspace)`, 0},
		{`switch pm.Role { case nn.PermMix: }; if c.Act != "relu" {}`, 0},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nfunc f() {\n"+c.src+"\n}\n", 0)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := violations(f, layers); len(got) != c.want {
			t.Errorf("%s: found %v, want %d breaches", c.src, got, c.want)
		}
	}
}

// goList returns, for the module's packages matching pattern, each import
// path (module prefix removed) with its non-test imports inside the module.
func goList(t *testing.T, dir string, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		g[pkg] = nil
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module+"/") {
				g[pkg] = append(g[pkg], strings.TrimPrefix(imp, module+"/"))
			}
		}
	}
	return g
}

// A program that wants only a certificate does not link the plotting
// library: go list -deps ./certify has no gonum.org/v1/plot.
func TestCertifyLinksNoPlot(t *testing.T) {
	dir := root(t)
	cmd := exec.Command("go", "list", "-deps", "./certify")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/functionspace") {
		t.Fatalf("go list -deps ./certify lacks functionspace: %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "gonum.org/v1/plot") {
			t.Errorf("go list -deps ./certify contains %s", d)
		}
	}
}

// rank places each package of the module in the one-way order of
// docs/architecture.md. A package may import only packages of a lower
// rank, or of its own family (nn and nn/..., internal/... among
// themselves).
func rank(pkg string) (r int, family string, ok bool) {
	switch {
	case pkg == "geometry", pkg == "interval":
		return 0, pkg, true
	case pkg == "testdata":
		return 0, pkg, true // embedded data files (the MNIST subset)
	case pkg == "internal/testnets":
		return 2, pkg, true // test networks: built with nn, used by tests
	case pkg == "internal/archcheck":
		return 7, pkg, true
	case strings.HasPrefix(pkg, "internal/"):
		return 0, "internal", true // helpers any layer may use
	case pkg == "nn/importer":
		return 3, pkg, true // writes a run directory and reads it back with rundir.Read
	case pkg == "nn", strings.HasPrefix(pkg, "nn/"):
		return 1, "nn", true
	case pkg == "align":
		return 2, pkg, true
	case pkg == "rundir":
		return 2, pkg, true
	case pkg == "functionspace":
		return 3, pkg, true
	case pkg == "certify":
		return 4, pkg, true
	case pkg == "presentation":
		return 5, pkg, true
	case strings.HasPrefix(pkg, "cmd/"):
		return 6, pkg, true
	}
	return 0, "", false
}

// Dependencies flow one way: geometry, interval ← nn ← functionspace ←
// certify ← presentation ← cmd, with rundir between nn and functionspace
// (functionspace.RunLine reads a *rundir.Run), align beside rundir
// (reading only nn), nn/importer above rundir (it checks what it writes
// with rundir.Read), and the internal helpers below everything.
func TestDependencyDirection(t *testing.T) {
	g := goList(t, root(t), "./...")
	if len(g) < 10 {
		t.Fatalf("go list found %d packages", len(g))
	}
	for pkg, imps := range g {
		rp, fp, ok := rank(pkg)
		if !ok {
			t.Errorf("package %s has no place in the dependency order: add it to rank and to docs/architecture.md", pkg)
			continue
		}
		for _, q := range imps {
			rq, fq, ok := rank(q)
			if ok && (rq < rp || fq == fp) {
				continue
			}
			t.Errorf("%s imports %s: dependencies flow geometry, interval ← nn ← functionspace ← certify ← presentation ← cmd", pkg, q)
		}
	}
}
