package nn

// Anchored returns a Stepper that adds λ(θ − θ0) to every gradient before
// calling opt.Step: the gradient of the penalty (λ/2)‖θ − θ0‖₂² on the
// distance from initialisation, over the trainable parameters (params[i]
// and theta0[i] in Model.Trainable order; theta0 is not modified). With
// λ > 0 it is the L2-SP regulariser (Li, Grandvalet & Davoine, ICML 2018:
// weight decay towards the starting point instead of towards 0), which keeps
// θT near θ0; with λ < 0 it rewards distance from θ0 and pushes θT away.
//
// Why this lever: Lucas et al. 2021 (§5) found non-monotonic interpolation
// where the weights travel far from initialisation, ‖θT − θ0‖ large, and
// reached such runs indirectly (larger learning rates, Adam, BatchNorm,
// init scale). The anchor changes the distance travelled directly, with the
// data, architecture, optimizer and step size held fixed, so a sweep over λ
// tests the distance explanation itself (THEORY.md §5). The penalty is
// coupled to the gradient like PyTorch's weight_decay (so under Adam it is
// rescaled by the moment estimates); the training loss recorded and
// analysed is the plain loss, without the penalty. λ < 0 makes the
// penalised objective unbounded below: keep |λ| small against the loss's
// curvature, or training diverges (Train then stops with an error).
func Anchored(opt Stepper, theta0 [][]float64, lambda float64) Stepper {
	return &anchored{opt: opt, theta0: theta0, lambda: lambda}
}

type anchored struct {
	opt    Stepper
	theta0 [][]float64
	lambda float64
	buf    [][]float64
}

func (a *anchored) Step(params, grads [][]float64) {
	if a.buf == nil {
		a.buf = make([][]float64, len(grads))
		for i, g := range grads {
			a.buf[i] = make([]float64, len(g))
		}
	}
	for i, g := range grads {
		b, p, p0 := a.buf[i], params[i], a.theta0[i]
		for j := range g {
			b[j] = g[j] + a.lambda*(p[j]-p0[j])
		}
	}
	a.opt.Step(params, a.buf)
}
