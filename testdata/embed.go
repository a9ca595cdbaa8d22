// Package testdata embeds the small data sets committed with certify, so that
// they load from any working directory and offline.
//
// The go tool skips directories named testdata in package patterns such as
// ./..., so this package is built only when imported (by nn/dataset).
package testdata

import "embed"

// MNIST holds the committed MNIST subset (mnist/README.md): the first 5000
// training and the first 1000 test examples of MNIST as gzipped idx files
// under their canonical names, e.g. "mnist/train-images-idx3-ubyte.gz".
//
//go:embed mnist/*.gz
var MNIST embed.FS
