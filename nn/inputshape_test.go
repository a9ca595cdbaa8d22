package nn

import (
	"strings"
	"testing"
)

// TestCheckInputShape: the evaluation inputs' shape must be the model's
// input_shape (up to dimensions of size 1, which keep the order of the
// values) or flat; channels-last images of the same size, which a size
// check passed and which were analysed with their values in the wrong
// order, are refused with the file, the tensor and both shapes named.
func TestCheckInputShape(t *testing.T) {
	for _, tc := range []struct {
		shape, input []int
		want         []string // "" accepted
	}{
		{[]int{8, 2, 7, 7}, []int{2, 7, 7}, nil},
		{[]int{8, 98}, []int{2, 7, 7}, nil},
		{[]int{8, 28, 28}, []int{1, 28, 28}, nil},
		{[]int{8, 28, 28, 1}, []int{1, 28, 28}, nil}, // channels-last with one channel: the same order
		{[]int{8, 784}, []int{784}, nil},
		{[]int{8, 7, 7, 2}, []int{2, 7, 7}, []string{"data.safetensors: x: shape [8, 7, 7, 2]", "input_shape [2, 7, 7]", "expected [8, 2, 7, 7] or flat [8, 98]", "channels-last", "permute(0, 3, 1, 2)"}},
		{[]int{8, 14, 7}, []int{2, 7, 7}, []string{"shape [8, 14, 7]", "input_shape [2, 7, 7]", "another layout"}},
		{[]int{8, 28, 28}, []int{784}, []string{"shape [8, 28, 28]", "input_shape [784]", "flat [8, 784]"}},
		{[]int{8, 99}, []int{2, 7, 7}, []string{"shape [8, 99]"}},
	} {
		err := CheckInputShape("data.safetensors", "x", tc.shape, tc.input)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%v against %v: %v, want accepted", tc.shape, tc.input, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v against %v accepted, want refused", tc.shape, tc.input)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v against %v: %q lacks %q", tc.shape, tc.input, err, w)
			}
		}
	}
}
