// Package functionspace computes the output path of a model along the straight
// line from θ0 to θT, γ_i(α) = f(x_i; θ0 + αδ) with δ = θT − θ0 (a Line: by
// default a run's initial and trained weights, RunLine; any two states of the
// architecture, THEORY.md §10), together with
// its velocity γ′ = J_θ f δ and acceleration γ″ = D²_θ f[δ, δ], exactly (up to
// rounding) by one second-order forward pass per α (THEORY.md §1–§2), and the
// loss along the path with its exact derivatives (THEORY.md §4).
//
// Every weight tensor is affine in α, so a layer maps the triple (h, ḣ, ḧ) of
// its input to that of its output (nn.Layer.Jet). The first layer sees the
// network input, which does not depend on α: z(α) = W0 x + b0 + α(ΔW x + Δb)
// exactly, so W0 x and ΔW x are computed once for all α and cached. On an
// MLP of two or more hidden ReLU-family layers the next layer's input is
// then a quadratic in α whose coefficients change only where a first-layer
// unit switches, by one weight column: a grid (Path.AtGrid, the Gauss
// length's grid points) carries them from α to α (QuadCarry, carry.go)
// instead of a matrix product through that layer per α.
//
// Loss along the path, per example (THEORY.md §4):
//
//	mse:           ℓ = ‖γ − y‖²,  ℓ′ = 2⟨v, γ − y⟩,  ℓ″ = 2(‖v‖² + ⟨a, γ − y⟩)
//	cross_entropy: ℓ = lse(γ) − γ_y,  ℓ′ = ⟨p − e_y, v⟩,  ℓ″ = vᵀ(diag p − ppᵀ)v + ⟨p − e_y, a⟩
//
// with p = softmax(γ); the dataset loss L is the mean reduction of PyTorch
// (1/(N·K) Σ ℓ_i for mse, 1/N Σ ℓ_i for cross_entropy).
//
// The Gauss length of each example's path, and of the stacked path Γ, is the
// length of the tangent's trace on the unit sphere, corners included
// (THEORY.md §3). Path.GaussLength computes it from batched passes on a
// uniform grid: kink-free intervals by Gauss–Legendre quadrature of the
// turning rate of the cubic Hermite interpolant of γ′ (from γ′, γ″ at both
// ends); an interval where a kinked layer's switch unit changes branch
// (nn.Switching: a ReLU-family pre-activation changes side, a max-pool
// window's arg-max changes) is split at the kink, the zero of the
// switching function, located in closed form for the first such layer
// (affine input) and from the jets of deeper ones, with the corner angle
// between the exact one-sided tangents. The one-sided jets come from a
// per-row-α pass that forces the switch units to either side (or, for one
// hidden layer, where γ is quadratic between kinks, from exact Taylor
// extrapolation; for two hidden ReLU-family layers, where the second
// one's input is quadratic between first-layer kinks and γ cubic between
// all kinks, from the grid point's jets carried by Taylor steps and
// rank-one jumps, with no per-row pass through the wide layers:
// piecewise.go). Path.Kinks and Path.ExampleGaussLength do the same for one
// example with an adaptive G7/K15 rule (geometry.GaussLength): the oracle.
// G(Γ) is a plain sum of angles on the grid; on ReLU networks it does not
// converge at practical grids (GaussResult.StackedConverged).
//
// BatchNorm (THEORY.md §2) follows Options.BNPolicy. `interpolate` (the
// default) treats the running statistics as parameters affine in α
// (nn.BatchNorm.Jet, JetRows). `recompute` normalises every example with the
// statistics of a fixed reference batch (the first Options.BNReference
// examples, biased variance) at the same α: Path.ParamsAt pushes the
// reference batch through the layers and keeps each BatchNorm layer's
// statistics jet (nn.BatchStatsJet), at any depth — a BatchNorm in a
// residual body or shortcut included, indexed by its nn.Site, the passes
// descending into the blocks that hold one — with which JetChunk normalises
// every chunk (nn.BatchNorm.JetStats); the per-row pass computes them once
// per distinct α among its rows. The float32 passes apply a block as a
// whole, so float32 with `recompute` and a BatchNorm inside a block is
// refused (naming the layers). Under `recompute` the reference examples' kinks
// turn every example's path (through μ(α), σ²(α)); the Gauss length locates
// only each example's own kinks, so those corners enter through the grid
// alone (as smooth turning, converging as the grid is refined, not counted
// as corners).
package functionspace
