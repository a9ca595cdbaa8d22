// Package optim implements PyTorch's optimizers SGD, Adam and AdamW exactly as
// torch.optim does in PyTorch 1.13 (single-tensor code path, maximize=False), on
// parameters and gradients given as flat float64 slices, one slice per parameter
// tensor. The package needs no tensor type: a network flattens each weight tensor
// (row-major) and hands the slices to Step.
//
// The update rules, for one parameter tensor p with gradient g at step t = 1, 2, …
// (all operations elementwise, in the order PyTorch performs them):
//
// SGD (torch.optim.SGD; lr λ, momentum μ, dampening τ, weight decay w):
//
//	d ← g + w·p                                (only if w ≠ 0: L2 added to the gradient)
//	b ← d                    at t = 1          (momentum buffer starts at the gradient, undamped)
//	b ← μ·b + (1−τ)·d        at t > 1          (only if μ ≠ 0)
//	d ← d + μ·b  (Nesterov)  or  d ← b         (only if μ ≠ 0)
//	p ← p − λ·d
//
// Adam (torch.optim.Adam; lr λ, betas β1, β2, eps ε, weight decay w):
//
//	g ← g + w·p                                (only if w ≠ 0: L2, not decoupled)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	v̂ ← max(v̂, v)                              (AMSGrad only; v̂ replaces v below)
//	denom ← √v / √(1−β2ᵗ) + ε
//	p ← p − (λ/(1−β1ᵗ))·m / denom
//
// AdamW (torch.optim.AdamW) is Adam with the weight decay decoupled: p ← p·(1 − λ·w)
// first, and the gradient is not modified.
//
// Optimizer state (momentum buffers, moment estimates, step counts) can be exported
// and re-imported as a State, named after PyTorch's optimizer state_dict
// ("0.exp_avg" is state_dict()["state"][0]["exp_avg"]), so that training can be
// checkpointed and resumed bit-for-bit.
//
// The floating-point operations are PyTorch's, in PyTorch's order: the
// multiply-adds that ATen's CPU kernels fuse (add with alpha, addcmul) are fused here
// with math.FMA, and βᵗ is correctly rounded, as glibc's pow (behind PyTorch's
// Python-float bias correction) is in all but rare cases and Go's math.Pow is not. The tests replay trajectories recorded from
// torch.optim 1.13 in float64 on x86-64 (testdata/torch_optim.py, tensors of 2, 3
// and 19 elements) and agree bit for bit; they assert 1e-13 normwise relative.
package optim
