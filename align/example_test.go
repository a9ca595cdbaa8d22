package align_test

import (
	"fmt"

	"github.com/certify-mli/certify/align"
)

// The assignment with the largest total weight; taking the largest entry
// first (9) would end at 11, the optimum pairs the two 8s.
func ExampleMaxAssignment() {
	w := [][]float64{
		{9, 8, 1},
		{8, 1, 1},
		{1, 1, 1},
	}
	p, total, err := align.MaxAssignment(w)
	if err != nil {
		panic(err)
	}
	fmt.Println(p, total)
	// Output: [1 0 2] 17
}
