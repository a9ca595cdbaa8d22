package optim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Optimizer is one PyTorch optimizer acting on a fixed list of parameter tensors,
// each flattened to a []float64.
type Optimizer interface {
	// Step performs one optimizer.step(): it updates params[i] in place from
	// grads[i]. params and grads must have the same number of tensors, grads[i] the
	// same length as params[i], and the list of tensors and their lengths must not
	// change between calls (the optimizer keeps per-tensor state); Step panics
	// otherwise.
	Step(params, grads [][]float64)
	// State returns a copy of the optimizer's state (see State). Before the first
	// Step it is empty.
	State() State
	// SetState replaces the optimizer's state by a copy of s, as exported by State
	// (possibly of another optimizer value with the same hyperparameters, or loaded
	// from a checkpoint). It returns an error if s has names this optimizer does not
	// use, misses a name it needs, or has inconsistent lengths; lengths are checked
	// against the parameters by CheckParams (nn.Train calls it before the first
	// step and returns its error); Step itself panics on a mismatch.
	SetState(s State) error
}

// State is an optimizer's state as named flat slices, named like PyTorch's
// optimizer state_dict()["state"]: the key "i.name" holds state[i][name] for the
// i-th parameter tensor, flattened. Names used:
//
//	SGD:   "i.momentum_buffer" (len(params[i]); present once momentum ≠ 0 has stepped)
//	Adam:  "i.step" (length 1, the integer step count t), "i.exp_avg" (m),
//	       "i.exp_avg_sq" (v), and with AMSGrad "i.max_exp_avg_sq" (v̂)
//	AdamW: as Adam.
type State map[string][]float64

// Names returns the keys of s in sorted order.
func (s State) Names() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (s State) clone() State {
	c := make(State, len(s))
	for k, v := range s {
		c[k] = cloneSlice(v)
	}
	return c
}

// cloneSlice copies v into a new non-nil slice.
func cloneSlice(v []float64) []float64 {
	c := make([]float64, len(v))
	copy(c, v)
	return c
}

// parseKey splits "i.name" into i and name.
func parseKey(key string) (int, string, error) {
	dot := strings.IndexByte(key, '.')
	if dot <= 0 {
		return 0, "", fmt.Errorf("optim: state name %q is not of the form \"index.name\"", key)
	}
	i, err := strconv.Atoi(key[:dot])
	if err != nil || i < 0 || strconv.Itoa(i) != key[:dot] {
		return 0, "", fmt.Errorf("optim: state name %q has an invalid tensor index", key)
	}
	return i, key[dot+1:], nil
}

// splitState groups s by tensor index, checking that only the given names occur and
// that indices are 0, 1, …, n−1 without gaps.
func splitState(s State, allowed ...string) ([]map[string][]float64, error) {
	byIndex := map[int]map[string][]float64{}
	n := 0
	for key, v := range s {
		i, name, err := parseKey(key)
		if err != nil {
			return nil, err
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return nil, fmt.Errorf("optim: unknown state name %q (this optimizer uses %s)", key, strings.Join(allowed, ", "))
		}
		if byIndex[i] == nil {
			byIndex[i] = map[string][]float64{}
		}
		byIndex[i][name] = v
		if i+1 > n {
			n = i + 1
		}
	}
	out := make([]map[string][]float64, n)
	for i := range out {
		if byIndex[i] == nil {
			return nil, fmt.Errorf("optim: state has tensor %d but none for tensor %d", n-1, i)
		}
		out[i] = byIndex[i]
	}
	return out, nil
}

// checkShapes panics unless params and grads have matching shapes.
func checkShapes(params, grads [][]float64) {
	if len(params) != len(grads) {
		panic(fmt.Sprintf("optim: %d parameter tensors but %d gradients", len(params), len(grads)))
	}
	for i := range params {
		if len(params[i]) != len(grads[i]) {
			panic(fmt.Sprintf("optim: parameter %d has length %d but its gradient %d", i, len(params[i]), len(grads[i])))
		}
	}
}

// Config selects an optimizer's hyperparameters for New. A zero value means
// PyTorch's default where PyTorch has one:
//
//	LR:          SGD has no default in PyTorch (lr=required): zero is an error.
//	             Adam and AdamW: 1e-3.
//	Momentum:    SGD only; default 0 (plain SGD). Dampening is always 0 here
//	             (construct SGD directly for dampening).
//	Nesterov:    SGD only; requires Momentum > 0.
//	WeightDecay: SGD and Adam: default 0 (L2 added to the gradient).
//	             AdamW: default 1e-2 (decoupled), so zero cannot select AdamW without
//	             weight decay; that optimizer is exactly Adam with WeightDecay 0.
//	Beta1, Beta2, Eps: Adam and AdamW; defaults 0.9, 0.999, 1e-8. Zero cannot select
//	             β1 = 0 or ε = 0; construct Adam directly for those.
type Config struct {
	LR          float64
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	Beta1       float64
	Beta2       float64
	Eps         float64
}

// Names of the optimizers New knows.
const (
	NameSGD   = "sgd"
	NameAdam  = "adam"
	NameAdamW = "adamw"
)

// New returns the optimizer called name ("sgd", "adam" or "adamw", case-insensitive)
// with the hyperparameters of cfg (zero fields mean PyTorch defaults, see Config).
// It returns an error naming the optimizer if name is unknown, if SGD is given no
// learning rate, if a field is set that the optimizer does not use (Momentum or
// Nesterov for Adam/AdamW; Beta1, Beta2 or Eps for SGD), or if a value is invalid by
// PyTorch's rules (negative lr, momentum, weight decay or eps; β outside [0, 1);
// Nesterov without momentum).
func New(name string, cfg Config) (Optimizer, error) {
	switch strings.ToLower(name) {
	case NameSGD:
		if cfg.LR == 0 {
			return nil, fmt.Errorf("optim: sgd needs a learning rate (torch.optim.SGD has no default lr)")
		}
		if cfg.Beta1 != 0 || cfg.Beta2 != 0 || cfg.Eps != 0 {
			return nil, fmt.Errorf("optim: sgd does not use Beta1, Beta2 or Eps")
		}
		o := &SGD{LR: cfg.LR, Momentum: cfg.Momentum, Nesterov: cfg.Nesterov, WeightDecay: cfg.WeightDecay}
		if err := o.validate(); err != nil {
			return nil, err
		}
		return o, nil
	case NameAdam, NameAdamW:
		if cfg.Momentum != 0 || cfg.Nesterov {
			return nil, fmt.Errorf("optim: %s does not use Momentum or Nesterov", strings.ToLower(name))
		}
		var a adamHyper
		if strings.ToLower(name) == NameAdam {
			a = NewAdam().hyper()
		} else {
			a = NewAdamW().hyper()
		}
		if cfg.LR != 0 {
			a.LR = cfg.LR
		}
		if cfg.Beta1 != 0 {
			a.Beta1 = cfg.Beta1
		}
		if cfg.Beta2 != 0 {
			a.Beta2 = cfg.Beta2
		}
		if cfg.Eps != 0 {
			a.Eps = cfg.Eps
		}
		if cfg.WeightDecay != 0 {
			a.WeightDecay = cfg.WeightDecay
		}
		if err := a.validate(strings.ToLower(name)); err != nil {
			return nil, err
		}
		if strings.ToLower(name) == NameAdam {
			return &Adam{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, WeightDecay: a.WeightDecay}, nil
		}
		return &AdamW{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, WeightDecay: a.WeightDecay}, nil
	}
	return nil, fmt.Errorf("optim: unknown optimizer %q (known: sgd, adam, adamw)", name)
}

func validNonNeg(what, name string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 1) {
		return fmt.Errorf("optim: %s: invalid %s %v", what, name, v)
	}
	return nil
}
