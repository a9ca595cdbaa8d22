package main

import (
	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/progress"
)

// analysisPhase is the progress phase of a stage certify.Analyze reports,
// with the total to show: grid and per-layer passes count α, the Gauss
// length counts the α of its fine grid (kinks are located and crossed
// within each step; a finer grid is a new pass), the continuous Δ counts its
// extra passes (no total known), and the certificate counts leaves against
// its budget (it usually stops well short of it), as do the certified
// accuracy bounds.
func analysisPhase(stage string, total int) (progress.Phase, int) {
	switch stage {
	case "loss on the grid", "Gauss length":
		return progress.Phase{Name: stage, Unit: "α"}, total
	case "per-layer L′":
		return progress.Phase{Name: stage, Unit: "passes"}, total
	case "continuous Δ":
		return progress.Phase{Name: stage, Unit: "passes"}, 0
	case "certificate", "accuracy":
		return progress.Phase{Name: stage, Unit: "leaves", Budget: true}, total
	}
	return progress.Phase{Name: stage}, total
}

// analysisPlan is the phases certify.Analyze goes through with options o
// (Certificate set) on a model with loss lossKind, in order, named as it
// reports them, then the figures when they are drawn (brief): the
// progress bar's overall estimate (progress.Bar.SetPlan). Two phases run
// only in some cases, known once Analyze gets there (Maybe): the per-layer
// L′ passes, when the grid's carried pass could not split L′ by layer (an
// MLP with one hidden layer, a CNN), and the continuous Δ, which reports
// only where L′ changes sign on the Gauss length's grid.
// TestAnalysisPlanMatches checks the plan against the stages Analyze
// reports.
func analysisPlan(o certify.Options, lossKind string, figures bool) []progress.Step {
	plan := []progress.Step{{Name: "loss on the grid"}}
	if !o.LossOnly && !o.NoPerLayer {
		plan = append(plan, progress.Step{Name: "per-layer L′", Maybe: true})
	}
	if !o.LossOnly && !o.NoGeometry {
		plan = append(plan, progress.Step{Name: "Gauss length", Passes: true}, progress.Step{Name: "continuous Δ", Maybe: true})
		if lossKind == "mse" && o.Certificate && o.ExampleIntervals > 0 {
			plan = append(plan, progress.Step{Name: "per-example certificate"})
		}
	}
	if o.Certificate {
		plan = append(plan, progress.Step{Name: "certificate"}, progress.Step{Name: "accuracy"})
	}
	if figures {
		plan = append(plan, progress.Step{Name: "figures", Brief: true})
	}
	return plan
}
