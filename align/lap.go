// Package align permutes the hidden units of one network to match another
// (weight matching; THEORY.md §10, Ainsworth et al. 2023, "Git Re-Basin",
// Algorithm 1): permuting the hidden units of a layer (rows of W_l and b_l,
// BatchNorm's per-unit tensors, and the matching columns of W_{l+1}) leaves
// the network's function unchanged, so two networks trained from different
// seeds can be compared after the permutation that brings B closest to A.
// The same holds for the channels of conv2d layers (both axes of
// [out, in, kh, kw], batchnorm2d's tensors, blocks of H·W columns after
// flatten), and along a residual stream, whose additions force one
// permutation on the layers they join (weights.go).
//
// Each coordinate-descent step is a linear assignment problem, solved here
// by the Hungarian method with potentials (Kuhn 1955; Munkres 1957; the
// O(n³) shortest-augmenting-path form of Jonker & Volgenant 1987 without
// their initialisation heuristics).
package align

import (
	"errors"
	"fmt"
	"math"
)

// MaxAssignment returns the permutation π of {0, …, n−1} that maximises
// Σ_i w[i][π[i]] for the square n×n matrix w, and that maximum. Ties are
// broken deterministically. It returns an error for a matrix that is not
// square or has a non-finite entry.
func MaxAssignment(w [][]float64) ([]int, float64, error) {
	n := len(w)
	for i, row := range w {
		if len(row) != n {
			return nil, 0, fmt.Errorf("align: assignment: row %d has %d entries, want %d (a square matrix)", i, len(row), n)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("align: assignment: non-finite weight %v at [%d, %d]", v, i, j)
			}
		}
	}
	if n == 0 {
		return nil, 0, errors.New("align: assignment: empty matrix")
	}
	// Minimise the cost c = −w with the Hungarian method in its
	// shortest-augmenting-path form: rows enter one at a time; u, v are the
	// dual potentials, p[j] the row (1-based) assigned to column j, way[j]
	// the previous column on the alternating path.
	inf := math.Inf(1)
	u := make([]float64, n+1)
	v := make([]float64, n+1)
	p := make([]int, n+1)
	way := make([]int, n+1)
	minv := make([]float64, n+1)
	used := make([]bool, n+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j], used[j] = inf, false
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], inf, 0
			for j := 1; j <= n; j++ {
				if used[j] {
					continue
				}
				cur := -w[i0-1][j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	perm := make([]int, n)
	for j := 1; j <= n; j++ {
		perm[p[j]-1] = j - 1
	}
	var total float64
	for i, j := range perm {
		total += w[i][j]
	}
	return perm, total, nil
}
