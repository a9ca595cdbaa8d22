package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestAnalysisPlanMatches: the plan behind the progress bar's overall
// estimate (analysisPlan) is the stages certify.Analyze reports, in the
// order it reports them — for cross-entropy and mse (with the per-example
// certificate), with and without the certificate, loss-only — so "to come"
// names what will come and the last phase is the last. A phase added to or
// reordered in Analyze fails here until the plan follows. Phases marked
// Maybe (per-layer L′, continuous Δ) may be absent.
func TestAnalysisPlanMatches(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loss     string
		opt      certify.Options
		perLayer bool // the one-hidden-layer MLP's L′ is split by layer in extra passes
	}{
		{"cross_entropy", "cross_entropy", certify.Options{Certificate: true}, true},
		{"mse", "mse", certify.Options{Certificate: true, ExampleIntervals: 4}, true},
		{"no certificate", "cross_entropy", certify.Options{}, true},
		{"loss only", "cross_entropy", certify.Options{LossOnly: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := nn.MLPSpec([]int{3, 5, 2}, "tanh", tc.loss)
			m, err := nn.Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			s0, _ := nn.Init(m, "pytorch", 1, 1)
			sT, _ := nn.Init(m, "pytorch", 1, 2)
			x, tg := testnets.RandomData(rand.New(rand.NewPCG(3, 4)), 6, 3, 2, tc.loss, 1)
			p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			o := tc.opt
			o.Alphas, o.MaxIntervals, o.AccuracyIntervals = 9, 48, 48
			var stages []string
			o.Progress = func(stage string, _, _ int) {
				if len(stages) == 0 || stages[len(stages)-1] != stage {
					stages = append(stages, stage)
				}
			}
			if _, err := certify.Analyze(context.Background(), p, o); err != nil {
				t.Fatal(err)
			}
			var plan []string
			for _, st := range analysisPlan(o.WithDefaults(), tc.loss, false) {
				if !st.Maybe || slices.Contains(stages, st.Name) { // Maybe: only in some cases
					plan = append(plan, st.Name)
				}
			}
			if tc.perLayer != slices.Contains(stages, "per-layer L′") {
				t.Errorf("per-layer L′ reported: %v, want %v", !tc.perLayer, tc.perLayer)
			}
			if !slices.Equal(stages, plan) {
				t.Errorf("Analyze reported the stages %q; the plan is %q", stages, plan)
			}
		})
	}
}
