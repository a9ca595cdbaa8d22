package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Targets are what a model's outputs are compared with: integer class
// labels [N] (cross_entropy; one-hot encoded for mse) or float targets [N, K]
// (mse). Exactly one of Labels and Values is set.
type Targets struct {
	Labels []int
	Values *mat.Dense
}

// Len is the number of examples N.
func (t Targets) Len() int {
	if t.Values != nil {
		n, _ := t.Values.Dims()
		return n
	}
	return len(t.Labels)
}

// Rows returns the targets of examples [i, j).
func (t Targets) Rows(i, j int) Targets {
	if t.Values != nil {
		_, k := t.Values.Dims()
		return Targets{Values: t.Values.Slice(i, j, 0, k).(*mat.Dense)}
	}
	return Targets{Labels: t.Labels[i:j]}
}

// Target returns example i's target as a vector of length k: the row of
// Values, or the one-hot encoding of Labels[i] (dst is reused when long enough).
func (t Targets) Target(i, k int, dst []float64) []float64 {
	if t.Values != nil {
		return t.Values.RawRowView(i)
	}
	dst = dst[:k]
	for j := range dst {
		dst[j] = 0
	}
	dst[t.Labels[i]] = 1
	return dst
}

// CheckTargets validates targets against a model with K outputs and loss
// kind: labels must lie in [0, K), float targets must be [N, K] and finite,
// cross_entropy needs labels. source names the file in errors.
func CheckTargets(t Targets, k int, loss, source string) error {
	if t.Len() == 0 {
		return fmt.Errorf("%s: y: empty data (0 examples)", source)
	}
	if t.Values != nil {
		if loss == "cross_entropy" {
			return fmt.Errorf("%s: y: cross_entropy needs integer class labels [N], found float targets", source)
		}
		_, c := t.Values.Dims()
		if c != k {
			return fmt.Errorf("%s: y: expected float targets [N, %d], found [N, %d]", source, k, c)
		}
		n, _ := t.Values.Dims()
		for i := 0; i < n; i++ {
			for j, v := range t.Values.RawRowView(i) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("%s: y: non-finite target %v at [%d, %d]", source, v, i, j)
				}
			}
		}
		return nil
	}
	for i, l := range t.Labels {
		if l < 0 || l >= k {
			return fmt.Errorf("%s: y: label %d of example %d out of range [0, %d)", source, l, i, k)
		}
	}
	return nil
}

// Loss returns the mean-reduced training loss of outputs out [N, K] (PyTorch's
// default reduction) and, if grad is true, dL/dout [N, K]:
//
//	mse:           L = (1/(N·K)) Σ (out − y)²
//	cross_entropy: L = (1/N) Σ (logsumexp(out_i) − out_i[y_i])
//
// THEORY.md §4. The log-sum-exp is shifted by the row maximum for stability.
func Loss(kind string, out *mat.Dense, t Targets, grad bool) (float64, *mat.Dense) {
	return LossReduced(kind, ReductionMean, out, t, grad)
}

// LossReduced is Loss with the reduction over one example's outputs of
// Spec.LossReduction: for mse, ReductionSum gives L = (1/N) Σ‖out_i − y_i‖²
// (Lucas et al. 2021's autoencoder loss, THEORY.md §11) and ReductionMean
// Loss's (1/(N·K)) Σ. cross_entropy ignores the reduction (one value per
// example).
func LossReduced(kind, reduction string, out *mat.Dense, t Targets, grad bool) (float64, *mat.Dense) {
	n, k := out.Dims()
	var g *mat.Dense
	if grad {
		g = mat.NewDense(n, k, nil)
	}
	var sum float64
	buf := make([]float64, k)
	switch kind {
	case "mse":
		scale := 1 / float64(n*k)
		if reduction == ReductionSum {
			scale = 1 / float64(n)
		}
		for i := 0; i < n; i++ {
			row := out.RawRowView(i)
			y := t.Target(i, k, buf)
			for j, v := range row {
				r := v - y[j]
				sum += r * r
				if grad {
					g.Set(i, j, 2*r*scale)
				}
			}
		}
		return sum * scale, g
	case "cross_entropy":
		scale := 1 / float64(n)
		for i := 0; i < n; i++ {
			row := out.RawRowView(i)
			lse := LogSumExp(row)
			sum += lse - row[t.Labels[i]]
			if grad {
				gr := g.RawRowView(i)
				for j, v := range row {
					gr[j] = math.Exp(v-lse) * scale
				}
				gr[t.Labels[i]] -= scale
			}
		}
		return sum * scale, g
	}
	panic("nn: unknown loss " + kind)
}

// LogSumExp returns log Σ exp(x_j), shifted by max x for stability.
func LogSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// Correct counts the rows of out [N, K] whose arg-max equals the label (for
// float targets, the arg-max of the target row). Ties go to the lowest index,
// as torch.argmax does.
func Correct(out *mat.Dense, t Targets) int {
	n, _ := out.Dims()
	c := 0
	for i := 0; i < n; i++ {
		var want int
		if t.Values != nil {
			want = argmax(t.Values.RawRowView(i))
		} else {
			want = t.Labels[i]
		}
		if argmax(out.RawRowView(i)) == want {
			c++
		}
	}
	return c
}

func argmax(x []float64) int {
	b := 0
	for j, v := range x {
		if v > x[b] {
			b = j
		}
	}
	return b
}
