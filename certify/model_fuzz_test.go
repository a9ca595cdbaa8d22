package certify

import (
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// setModelFuzzChecks sets rapid's number of checks to CERTIFY_MODEL_FUZZ
// when that is set (a long run), restoring it when t ends; otherwise
// rapid's default (100, a fifth of it under -short) is kept.
func setModelFuzzChecks(t *testing.T) {
	v := os.Getenv("CERTIFY_MODEL_FUZZ")
	if v == "" {
		return
	}
	if n, err := strconv.Atoi(v); err != nil || n <= 0 {
		t.Fatalf("CERTIFY_MODEL_FUZZ=%q: want a positive number of checks", v)
	}
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	if err := f.Value.Set(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// refusalNamesLayer matches a model.json error naming the layer
// (layers[i], then possibly a residual's body or shortcut); DrawSpec's
// top-level fields are always valid.
var refusalNamesLayer = regexp.MustCompile(`model\.json: layers\[\d+\]`)

// TestModelFuzz draws random valid-looking model.json specs over every
// layer type (testnets.DrawSpec) and checks issue #11's promise: no
// model.json panics. nn.ReadSpec either refuses the file with an error
// naming it and the field, or the model builds; a built model's random θ0,
// θT (every tensor nn.Model.Expected lists) pass Model.Check, and
// functionspace.New followed by Analyze (5 α, a 32-interval certificate,
// both BatchNorm policies when the model has BatchNorm) either returns an
// error or a report whose verdict is one of the four and whose grid has
// the 5 α. A panic anywhere fails the check (rapid reports and shrinks it).
func TestModelFuzz(t *testing.T) {
	setModelFuzzChecks(t)
	dir := t.TempDir()
	var refused, analysed, failed int
	rapid.Check(t, func(rt *rapid.T) {
		spec := testnets.DrawSpec(rt)
		b, err := json.Marshal(spec)
		if err != nil {
			rt.Fatal(err)
		}
		file := filepath.Join(dir, "model.json")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			rt.Fatal(err)
		}
		read, err := nn.ReadSpec(file)
		if err != nil {
			if !refusalNamesLayer.MatchString(err.Error()) {
				rt.Fatalf("refusal names no field: %v\nmodel.json: %s", err, b)
			}
			refused++
			return
		}
		m, err := nn.Build(read)
		if err != nil {
			rt.Fatalf("ReadSpec accepted what Build refuses: %v\nmodel.json: %s", err, b)
		}
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 11))
		s0 := testnets.RandomState(m, rng, 0.5)
		sT := testnets.RandomState(m, rng, 0.5)
		if err := m.Check(s0, "init"); err != nil {
			rt.Fatalf("a state of Model.Expected's shapes fails Model.Check: %v\nmodel.json: %s", err, b)
		}
		n := rapid.IntRange(1, 4).Draw(rt, "n")
		x, tg := testnets.RandomData(rng, n, read.InputSize(), m.OutSize(), read.Loss, 1)
		opt := functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(rt, "chunk"), Workers: 1}
		if hasBatchStatistics(m) {
			opt.BNPolicy = rapid.SampledFrom([]functionspace.BNPolicy{functionspace.BNInterpolate, functionspace.BNRecompute}).Draw(rt, "bn")
		}
		if rapid.IntRange(0, 4).Draw(rt, "float32") == 0 {
			opt.Precision = functionspace.Float32
		}
		p, err := functionspace.New(m, s0, sT, x, tg, opt)
		if err != nil {
			rt.Logf("path refused: %v", err)
			failed++
			return
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 5, Certificate: rapid.Bool().Draw(rt, "certificate"),
			MaxIntervals: 32, GaussTol: 1e-2, GaussRelTol: 1e-2, GaussIntervals: 8, GaussMaxIntervals: 32})
		if err != nil {
			rt.Logf("analysis refused: %v", err)
			failed++
			return
		}
		switch r.Verdict {
		case CertifiedMonotone, MonotoneOnGrid, NonMonotone, Inconclusive:
		default:
			rt.Fatalf("verdict %q is none of the four\nmodel.json: %s", r.Verdict, b)
		}
		if len(r.Loss) != 5 || len(r.Alphas) != 5 {
			rt.Fatalf("%d losses on %d α, want 5", len(r.Loss), len(r.Alphas))
		}
		analysed++
	})
	t.Logf("%d specs refused by ReadSpec, %d analysed, %d refused by the path or the analysis", refused, analysed, failed)
}

// hasBatchStatistics reports whether m has a BatchNorm layer at any depth.
func hasBatchStatistics(m *nn.Model) bool {
	found := false
	_ = m.WalkSites(func(_ nn.Site, l nn.Layer) error {
		if _, ok := l.(nn.BatchStatistics); ok {
			found = true
		}
		return nil
	})
	return found
}
