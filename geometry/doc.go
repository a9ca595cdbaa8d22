// Package geometry is the differential geometry of paths γ: [0,1] → Rⁿ
// (THEORY.md §3): the output paths γ_i(α) = f(x_i; θα) of a network along the
// line θα = θ0 + α(θT − θ0), and the stacked path Γ = (γ_1, …, γ_N). It depends
// on no other package of certify.
//
// # Pointwise quantities
//
// From the velocity v = γ′(α) and acceleration a = γ″(α) at one α:
//
//	speed          ‖v‖                                        Speed
//	unit tangent   T = v/‖v‖   (the Gauss map)                 UnitTangent
//	its derivative T′ = (a − ⟨a,T⟩T)/‖v‖                       TangentDerivative
//	turning rate   ‖T′‖ = sqrt(‖a‖²‖v‖² − ⟨a,v⟩²)/‖v‖²        TurningRate
//	               = ‖a⊥‖/‖v‖,  a⊥ = a − ⟨a,T⟩T
//	curvature      κ = ‖T′‖/‖v‖                                Curvature
//	speed change   d‖v‖/dα = ⟨a,T⟩                             SpeedDerivative
//
// The turning rate is computed as the norm of a⊥, never by subtracting the two
// products under the square root, so it is never negative or NaN. Where v = 0
// the tangent is undefined: every function returns ErrZeroSpeed (the
// integrators a *ZeroSpeedError carrying α) instead of dividing by zero.
//
// For Γ the caller may accumulate ‖V‖² = Σ‖v_i‖², ⟨V,A⟩ = Σ⟨v_i,a_i⟩ and
// ‖A‖² = Σ‖a_i‖² over examples (TurningRateFromSums, or StackedSums, which
// keeps the sums in double-double precision to avoid the cancellation of the
// formula for nearly straight Γ).
//
// # Gauss length and arc length
//
// The Gauss length G(γ) = ∫₀¹ ‖T′(α)‖ dα = ∫ κ ds is the length of the trace
// of T on the unit sphere S^{n−1}: the total turning of the path. It is
// invariant under translation, rotation, scaling by c ≠ 0, reversal α → 1 − α
// and reparametrisation with non-vanishing speed, and is 0 for a straight
// segment. The angle between T(α) and T(β) is at most G[α, β].
// The arc length is S = ∫₀¹ ‖v‖ dα and the remaining arc S(α) = ∫_α¹ ‖v‖.
//
// Paths of ReLU networks are only piecewise smooth: at a kink α_k the velocity
// jumps, and the tangent turns by the corner angle ∠(T(α_k⁻), T(α_k⁺)) =
// arccos⟨T(α_k⁻), T(α_k⁺)⟩ (CornerAngle, evaluated as 2·atan2(‖u−w‖, ‖u+w‖)).
// The Gauss length counts every corner in addition to the integral over the
// smooth pieces; the integral alone misses them (THEORY.md §3, §6 Theorem A).
//
// GaussLength and ArcLength integrate a Curve (a function writing γ′(α) and
// γ″(α)) with an adaptive Gauss–Kronrod G7/K15 rule split at the kinks, and
// report an error estimate (see Adaptive for its meaning and for how an
// unreported corner or a cusp is detected).
//
// # Sample-based quadrature
//
// For batched evaluation at fixed α: Trapezoid and GaussLengthTrapezoid (the
// paper's rule on its 50-point grid, no corners), RemainingArc, composite
// Gauss–Legendre nodes and weights (LegendrePanels), and composite
// Gauss–Kronrod nodes with an embedded error estimate (KronrodPanels,
// KronrodSum). ChordDeviation measures how far one path strays from its chord.
package geometry
