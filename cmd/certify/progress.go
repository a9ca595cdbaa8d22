package main

import "github.com/certify-mli/certify/internal/progress"

// analysisPhase is the progress phase of a stage certify.Analyze reports,
// with the total to show: grid and per-layer passes count α, the Gauss
// length counts the α of its fine grid (kinks are located and crossed
// within each step; a finer grid is a new pass), the continuous Δ counts its
// extra passes (no total known), and the certificate counts leaves against
// its budget (it usually stops well short of it).
func analysisPhase(stage string, total int) (progress.Phase, int) {
	switch stage {
	case "loss on the grid", "Gauss length":
		return progress.Phase{Name: stage, Unit: "α"}, total
	case "per-layer L′":
		return progress.Phase{Name: stage, Unit: "passes"}, total
	case "continuous Δ":
		return progress.Phase{Name: stage, Unit: "passes"}, 0
	case "certificate":
		return progress.Phase{Name: stage, Unit: "leaves", Budget: true}, total
	}
	return progress.Phase{Name: stage}, total
}
