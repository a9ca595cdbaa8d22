// Package archcheck holds no code: its tests check the structure rules of
// issue #11 on the source tree (docs/architecture.md), so that they stay
// true as the code grows.
//
//   - No package outside nn/ switches on, compares or asserts a concrete
//     layer type (a layer type string of nn.LayerTypes, Type()/Type of a
//     layer or LayerSpec, or a type assertion to a concrete nn layer
//     type): the analyses read the properties layers declare (nn/props.go,
//     nn/permute.go) instead.
//   - go list -deps ./certify contains no gonum.org/v1/plot.
//   - Imports flow one way: geometry, interval ← nn ← functionspace ←
//     certify ← presentation ← cmd, with the side packages (align, rundir,
//     the internal helpers) at their own places in that order.
package archcheck
