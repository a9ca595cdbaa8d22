package functionspace

import (
	"fmt"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// Line is the straight line in weight space that a Path follows:
// θ(α) = Start + α(End − Start) = (1 − α)·Start + α·End (THEORY.md §1 with
// Start = θ0, End = θT; THEORY.md §10 with Start = θA, End = θB). Either end
// may be any state of the model's architecture: a run's initialisation, a
// checkpoint, or another run's weights. α = 0 is Start and α = 1 is End.
//
// Every tensor the model has (parameters and BatchNorm buffers) moves along
// the line; the path stores δ = End − Start in float64 (Path.Delta).
type Line struct {
	// Start is θ(0) (θ0, θA): every tensor of the model, state_dict names.
	Start nn.State
	// End is θ(1) (θT, θB), with the same names and shapes as Start.
	End nn.State
	// StartName and EndName name the ends in error messages (e.g. the
	// checkpoint's file name); empty: "θ0" and "θT".
	StartName, EndName string
}

// RunLine returns the default line of a run: from its initial weights θ0
// to its trained weights θT (THEORY.md §1), named "θ0" and "θT".
func RunLine(r *rundir.Run) Line {
	return Line{Start: r.Theta0, End: r.ThetaT}
}

// Names returns the names of the two ends used in error messages:
// StartName and EndName, "θ0" and "θT" where empty.
func (l Line) Names() (start, end string) {
	start, end = l.StartName, l.EndName
	if start == "" {
		start = "θ0"
	}
	if end == "" {
		end = "θT"
	}
	return start, end
}

// Check checks both ends against model m (nn.Model.Check): every tensor the
// model expects is present with its shape and finite values, and no other
// tensor is. The error names the end (Names), the first differing tensor,
// and both shapes: the model's (which the other end, once checked, shares)
// and the one found. Start is checked first.
func (l Line) Check(m *nn.Model) error {
	sn, en := l.Names()
	if err := m.Check(l.Start, sn); err != nil {
		return err
	}
	return m.Check(l.End, en)
}

// Delta returns δ = End − Start, tensor by tensor in float64 (the path's
// velocity in weight space, THEORY.md §1). It is exact wherever the two
// entries are within a factor 2 of each other (Sterbenz's lemma); the
// ends must have the same names and shapes (Check).
func (l Line) Delta() nn.State {
	return nn.Difference(l.Start, l.End)
}

// At returns θ(α) = Start + α·δ in float64, the state the path evaluates at
// α (the same expression, Start + α·(End − Start), as its passes; not
// (1 − α)·Start + α·End, which rounds differently). The ends must have the
// same names and shapes (Check).
func (l Line) At(alpha float64) nn.State {
	d := l.Delta()
	out := make(nn.State, len(l.Start))
	for k, t0 := range l.Start {
		t := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
		for j := range t.Data {
			t.Data[j] = t0.Data[j] + alpha*d[k].Data[j]
		}
		out[k] = t
	}
	return out
}

// String describes the line by its ends' names, e.g. "θ0 → θT".
func (l Line) String() string {
	s, e := l.Names()
	return fmt.Sprintf("%s → %s", s, e)
}
