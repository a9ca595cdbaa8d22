// Package dataset loads the labelled image data sets on which certify
// evaluates the loss along the line θα = θ0 + α(θT − θ0) (THEORY.md §1, §4):
// MNIST, Fashion-MNIST, a committed 5000/1000-example MNIST subset, and any
// directory of idx files.
//
// # Data
//
// A Set holds N examples. Example i has the input x_i, D = 28·28 = 784 pixel
// intensities stored row-major as X[i*D : (i+1)*D], and the class label
// y_i = Y[i] ∈ {0, …, Classes−1}. Pixels are scaled as x = b/255 for the stored
// byte b ∈ {0, …, 255}, so x ∈ [0, 1]; this is torchvision's ToTensor without
// normalisation, and 0 is background. The per-example shape is PyTorch's
// [1, 28, 28] (channels, height, width).
//
// # The idx format
//
// The idx files of LeCun, Cortes and Burges (http://yann.lecun.com/exdb/mnist/)
// are big-endian: a 4-byte magic 0x00 0x00 0x08 d (unsigned bytes, d
// dimensions), d 4-byte dimension sizes, then the data with the last
// dimension varying fastest. Image files have magic 0x00000803 and dimensions
// [N, rows, cols]; label files have magic 0x00000801 and dimension [N].
// ReadIDXImages and ReadIDXLabels accept plain and gzipped files, told apart
// by the gzip magic bytes 0x1f 0x8b, and reject anything else with an error
// naming the file.
//
// # Where the data comes from
//
// See Load for the names and MNISTDir for how the full MNIST files are found.
package dataset
