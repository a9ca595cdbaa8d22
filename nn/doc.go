// Package nn is certify's small training engine: PyTorch-compatible sequential
// models of dense layers and elementwise activations, losses with PyTorch's mean
// reduction, initialisation schemes, and mini-batch training in float64.
//
// A model is described by a Spec (the run directory's model.json, RUN_FORMAT.md)
// and its parameters by a State keyed by PyTorch nn.Sequential state_dict names
// ("0.weight", "0.bias", ...), with PyTorch's layouts (dense weight [out, in]).
// Batches are row-major matrices [N, D]: one example per row.
//
// Each layer keeps all of its rules together (THEORY.md §2):
//
//   - Forward: y = f(x; p) for a batch;
//   - Backward: the vector-Jacobian products for training;
//   - Jet: the second-order forward rule along the line θα = θ0 + αδ. A Jet
//     carries the triple (h, ḣ, ḧ) = (value, d/dα, d²/dα²) for every example;
//     since every weight tensor is affine in α (W′ = ΔW, W″ = 0), a dense layer
//     maps it to ż = ΔW h + W ḣ + Δb and z̈ = 2 ΔW ḣ + W ḧ, and an activation to
//     ṡ = σ′(z) ż and s̈ = σ″(z) ż² + σ′(z) z̈.
//
// ReLU-family activations use one-sided derivatives at a kink: the right
// derivative for α increasing (the sign of ż, then of z̈, decides which side of
// the kink the path enters).
package nn
