package nn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/nn/optim"
)

// LRSchedule returns the TrainConfig.EpochStart of a MultiStepLR schedule
// (PyTorch's torch.optim.lr_scheduler.MultiStepLR stepped once per epoch,
// the paper's step schedule): before every epoch it sets opt's learning
// rate to base multiplied by gamma at every milestone epoch reached
// (optim.MultiStepLR). Errors: invalid milestones or gamma, or an
// optimizer whose rate cannot be set (not an optim.LRSetter).
func LRSchedule(opt Stepper, base float64, milestones []int, gamma float64) (func(epoch int), error) {
	s := optim.MultiStepLR{Milestones: milestones, Gamma: gamma}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	set, ok := opt.(optim.LRSetter)
	if !ok {
		return nil, fmt.Errorf("the optimizer %T has no settable learning rate", opt)
	}
	return func(epoch int) { set.SetLR(s.LR(base, epoch)) }, nil
}

// ParseMilestones reads a comma-separated list of epochs ("30,60,90"; ""
// is none), as PyTorch's MultiStepLR milestones.
func ParseMilestones(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("milestone %q: not an integer epoch", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// TrainSpec reads the model.json of `certify train --model PATH` (ReadSpec:
// errors name the file and the field) and returns it with the "IN-OUT"
// widths that stand for it where an MLP's --arch would (the input size and
// the output size, for the data checks). batchnorm (the MLP shorthand's
// --batchnorm) is refused: a model.json states its own layers.
func TrainSpec(path string, batchnorm bool) (*Spec, string, error) {
	if batchnorm {
		return nil, "", fmt.Errorf("--batchnorm applies to --arch; %s states its own layers", path)
	}
	s, err := ReadSpec(path)
	if err != nil {
		return nil, "", err
	}
	m, err := Build(s)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return s, fmt.Sprintf("%d-%d", s.InputSize(), m.OutSize()), nil
}
