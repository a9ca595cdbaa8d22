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
	"github.com/certify-mli/certify/rundir"
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
	r := rules{layers: layers, kinds: activationKinds(t, dir)}
	if !slices.Contains(r.kinds, "ReLU") {
		t.Fatalf("found activation kinds %v: the const scan is broken", r.kinds)
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
		for _, v := range violations(src, r) {
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

// rules are what the check looks for: the concrete layer types of nn (the
// receivers of a Jet method) and the constants of nn.ActivationKind.
type rules struct {
	layers []string // Dense, Conv2d, ...
	kinds  []string // ReLU, LeakyReLU, ...
}

// activationKinds returns the names of package nn's constants of type
// ActivationKind.
func activationKinds(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "nn", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "ActivationKind" {
					for _, n := range vs.Names {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// violations lists the rule's breaches in one parsed file:
//   - a switch on a layer's Type/Type() (or on a variable assigned from
//     one), or a case naming a layer type string (case "conv2d");
//   - a Type/Type() (or a variable assigned from one) compared with a
//     string; any value compared with a layer type string that is not also
//     an --act value (rundir.Activations: c.Act == "relu" is a training
//     setting); a Type tested with strings.HasPrefix, HasSuffix, Contains,
//     EqualFold, Index or TrimPrefix/TrimSuffix against one;
//   - a map literal keyed by a layer type string;
//   - any mention of a concrete nn layer type (a type assertion, a
//     type-switch case, reflect.TypeFor[*nn.Dense], a composite literal, a
//     declaration) or a string naming one ("*nn.Dense", as %T prints it);
//   - a case or comparison naming an nn.ActivationKind constant (nn.ReLU):
//     which activation a layer computes is nn's to interpret;
//   - a dot import of nn (its names could then not be told apart).
func violations(f *ast.File, r rules) []string {
	layers := r.layers
	nnName := ""
	for _, im := range f.Imports {
		if path, _ := strconv.Unquote(im.Path.Value); path == module+"/nn" {
			nnName = "nn"
			if im.Name != nil {
				nnName = im.Name.Name
			}
		}
	}
	var out []string
	if nnName == "." {
		return []string{"dot import of nn"}
	}
	if nnName == "" {
		nnName = "nn" // snippets without imports (TestRuleCatches)
	}
	isLayerString := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(b.Value)
		return s, err == nil && slices.Contains(nn.LayerTypes, s)
	}
	// nnSel returns X when e is <nn>.X.
	nnSel := func(e ast.Expr) string {
		if s, ok := e.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == nnName {
				return s.Sel.Name
			}
		}
		return ""
	}
	typeVars := map[string]bool{} // variables assigned from a Type selector
	isTypeValue := func(e ast.Expr) bool {
		if id, ok := e.(*ast.Ident); ok && typeVars[id.Name] {
			return true
		}
		return isTypeSelector(e)
	}
	isKind := func(e ast.Expr) (string, bool) {
		x := nnSel(e)
		return x, x != "" && slices.Contains(r.kinds, x)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i, rhs := range n.Rhs {
					if id, ok := n.Lhs[i].(*ast.Ident); ok && isTypeSelector(rhs) {
						typeVars[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			if len(n.Names) == len(n.Values) {
				for i, v := range n.Values {
					if isTypeSelector(v) {
						typeVars[n.Names[i].Name] = true
					}
				}
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && isTypeValue(n.Tag) {
				out = append(out, "switch on a layer's Type")
			}
			for _, c := range n.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if s, ok := isLayerString(e); ok {
						out = append(out, "case "+strconv.Quote(s))
					}
					if k, ok := isKind(e); ok {
						out = append(out, "case nn."+k)
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				break
			}
			for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
				if b, ok := pair[1].(*ast.BasicLit); ok && b.Kind == token.STRING && isTypeValue(pair[0]) {
					out = append(out, "Type compared with "+b.Value)
				}
			}
			for _, e := range []ast.Expr{n.X, n.Y} {
				if k, ok := isKind(e); ok {
					out = append(out, "comparison with nn."+k)
				}
				// Any value compared with a layer type name that is not
				// also an --act value (the training configuration's
				// activation, rundir.Activations): typ == "conv2d".
				if s, ok := isLayerString(e); ok && !slices.Contains(rundir.Activations, s) &&
					!isTypeValue(n.X) && !isTypeValue(n.Y) {
					out = append(out, "comparison with the layer type "+strconv.Quote(s))
				}
			}
		case *ast.CallExpr:
			fn, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || len(n.Args) != 2 {
				break
			}
			if pkg, ok := fn.X.(*ast.Ident); !ok || pkg.Name != "strings" {
				break
			}
			switch fn.Sel.Name {
			case "HasPrefix", "HasSuffix", "Contains", "EqualFold", "Index", "TrimPrefix", "TrimSuffix", "CutPrefix", "CutSuffix":
				if isTypeValue(n.Args[0]) || isTypeValue(n.Args[1]) {
					out = append(out, "strings."+fn.Sel.Name+" on a layer's Type")
				}
			}
		case *ast.CompositeLit:
			if _, ok := n.Type.(*ast.MapType); !ok {
				break
			}
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if s, ok := isLayerString(kv.Key); ok {
						out = append(out, "map keyed by layer type "+strconv.Quote(s))
					}
				}
			}
		case *ast.SelectorExpr:
			if x := nnSel(n); x != "" && slices.Contains(layers, x) {
				out = append(out, "names the concrete layer type nn."+x)
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				break
			}
			v, err := strconv.Unquote(n.Value)
			if err != nil {
				break
			}
			for _, l := range layers {
				if v == "nn."+l || v == "*nn."+l {
					out = append(out, "string naming the concrete layer type "+n.Value)
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
	r := rules{layers: []string{"Conv2d", "Dense"}, kinds: []string{"LeakyReLU", "ReLU"}}
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
		{`t := l.Type(); if t == "conv2d" {}`, 1},
		{`var k = ls.Type; switch k { case "tanh": }`, 2},
		{`if strings.HasPrefix(l.Type(), "batchnorm") {}`, 1},
		{`if strings.Contains(x, "pool") {}`, 0},
		{`m := map[string]int{"conv2d": 1}; _ = m`, 1},
		{`_ = reflect.TypeFor[*nn.Dense]()`, 1},
		{`var d *nn.Conv2d; _ = d`, 1},
		{`if fmt.Sprintf("%T", l) == "*nn.Dense" {}`, 1},
		{`switch a.Kind { case nn.ReLU, nn.LeakyReLU: }`, 2},
		{`if v.Kind != nn.ReLU {}`, 1},
		{`_ = l.(nn.Block); _ = p.Get().(*nn.Workspace)`, 0},
		{`switch pm.Role { case nn.PermMix: }; if c.Act != "relu" {}`, 0},
		{`k := nn.ActivationKind("relu"); _ = k.String()`, 0},
		{`func(typ string) bool { return typ == "conv2d" }("x")`, 1},
		{`if name != "residual" {}`, 1},
		{`if c.Act == "tanh" {}`, 0},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nfunc f() {\n"+c.src+"\n}\n", 0)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := violations(f, r); len(got) != c.want {
			t.Errorf("%s: found %v, want %d breaches", c.src, got, c.want)
		}
	}
	// An import of nn under another name is followed; a dot import is refused.
	for _, c := range []struct {
		src  string
		want int
	}{
		{"package x\nimport m \"" + module + "/nn\"\nfunc f(l any) { _ = l.(*m.Dense); _ = nn.Dense }\n", 1},
		{"package x\nimport . \"" + module + "/nn\"\nvar _ = Dense{}\n", 1},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), "x.go", c.src, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := violations(f, r); len(got) != c.want {
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
	case pkg == "scripts/testprogress":
		return 0, pkg, true // the test command's report (scripts/test.sh): standard library only
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
