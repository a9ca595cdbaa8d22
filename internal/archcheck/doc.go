// Package archcheck holds no code: its tests check the structure rules of
// issue #11 on the source tree (docs/architecture.md), so that they stay
// true as the code grows.
//
//   - No package outside nn/ switches on, compares or asserts a concrete
//     layer type: no switch on or comparison of a layer's or LayerSpec's
//     Type (directly or through a variable assigned from it, also with
//     strings.HasPrefix and its kin), no case or map key naming a layer
//     type string of nn.LayerTypes, no comparison with one (except the
//     --act values, rundir.Activations, which are training settings), no mention of a concrete nn layer type
//     (a type assertion, a type-switch case, reflect.TypeFor, a literal, a
//     declaration, or a string naming the type as %T prints it, "*nn." and the type name), no case or
//     comparison naming an nn.ActivationKind constant, no dot import of nn.
//     The analyses read the properties layers declare (nn/props.go,
//     nn/permute.go) instead.
//   - go list -deps ./certify contains no gonum.org/v1/plot.
//   - Imports flow one way: geometry, interval ← nn ← functionspace ←
//     certify ← presentation ← cmd, with the side packages (align, rundir,
//     the internal helpers) at their own places in that order.
package archcheck
