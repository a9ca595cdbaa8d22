package presentation

import (
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestFigureHeadingNamesRunAndSplit: figure titles name the run, the data
// set and split and the examples, not the file data.safetensors (a
// first-user walkthrough found "data.safetensors" where the run and split
// were expected): for a dataset, for a data file that records its source
// (certify export, certify import), and — only when nothing else is known
// — the file, as "data file …". Without --run in the command the run is
// the data file's directory.
func TestFigureHeadingNamesRunAndSplit(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		command    []string
		want       string
	}{
		{"dataset", "mnist-small train (first 500 examples)", []string{"certify", "--run", "/r/demo"},
			"demo — mnist-small train split, cross_entropy, 500 examples, 3 α"},
		{"exported", "/r/bench-5000/data.safetensors (mnist train split, first 5000 examples; first 500 examples)", []string{"certify", "--run", "/r/bench-5000/"},
			"bench-5000 — mnist train split, cross_entropy, 500 examples, 3 α"},
		{"imported", "/r/imp/data.safetensors (data file heldout.npz)", []string{"certify", "--run=/r/imp"},
			"imp — data file heldout.npz, cross_entropy, 500 examples, 3 α"},
		{"no source", "/r/old/data.safetensors — a note", []string{"certify", "--run", "/r/old"},
			"old — data file data.safetensors, cross_entropy, 500 examples, 3 α"},
		{"no --run", "/r/exp/data.safetensors (mnist train split, first 5000 examples)", []string{"certify", "bench"},
			"exp — mnist train split, cross_entropy, 500 examples, 3 α"},
	} {
		r := &certify.Report{Data: tc.data, Command: tc.command, LossKind: "cross_entropy", Examples: 500, Alphas: []float64{0, 0.5, 1}}
		got := strings.TrimSuffix(figureHeading(r), "\n")
		if got != tc.want {
			t.Errorf("%s: heading %q, want %q", tc.name, got, tc.want)
		}
	}
}
