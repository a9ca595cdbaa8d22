package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type lmcLayersJSON struct {
	Loss   []float64 `json:"loss"`
	Layers []string  `json:"layers"`
	Hold   string    `json:"hold"`
	Moved  []string  `json:"moved_tensors"`
}

func readLMCLayers(t *testing.T, dir string) lmcLayersJSON {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r lmcLayersJSON
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// Layer-wise LMC: moving every layer is the plain line (the same losses,
// bit for bit, under either hold); moving layer 0 with the rest held at B
// ends at L(B) and starts elsewhere; lmc.json records the layers, the hold
// and the moved tensors; a layer without tensors and --hold without
// --layers are refused.
func TestLMCLayers(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	tmp := t.TempDir()
	run := func(name string, extra ...string) lmcLayersJSON {
		out := filepath.Join(tmp, name)
		args := append([]string{"lmc", a, b, "--out", out, "--alphas", "11", "--no-figures"}, extra...)
		if code, _, se := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, se)
		}
		return readLMCLayers(t, out)
	}
	plain := run("plain")
	for _, hold := range []string{"a", "b"} {
		all := run("all-"+hold, "--layers", "0, 2", "--hold", hold)
		if !slices.Equal(all.Loss, plain.Loss) {
			t.Errorf("--layers 0,2 --hold %s: loss %v, plain %v", hold, all.Loss, plain.Loss)
		}
		if !slices.Equal(all.Layers, []string{"0", "2"}) || all.Hold != hold || !slices.Equal(all.Moved, []string{"0.bias", "0.weight", "2.bias", "2.weight"}) {
			t.Errorf("recorded layers %v hold %q moved %v", all.Layers, all.Hold, all.Moved)
		}
	}
	one := run("one", "--layers", "0", "--hold", "b")
	n := len(one.Loss)
	if one.Loss[n-1] != plain.Loss[n-1] || one.Loss[0] == plain.Loss[0] || !slices.Equal(one.Moved, []string{"0.bias", "0.weight"}) {
		t.Errorf("--layers 0 --hold b: L from %v to %v (plain %v to %v), moved %v", one.Loss[0], one.Loss[n-1], plain.Loss[0], plain.Loss[n-1], one.Moved)
	}
	if plain.Layers != nil {
		t.Errorf("plain lmc.json records layers %v", plain.Layers)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--layers", "1"}, "1 selects no tensor"},
		{[]string{"--layers", "0,"}, "empty item"},
		{[]string{"--hold", "b"}, "--hold needs --layers"},
		{[]string{"--layers", "0", "--hold", "c"}, "want a or b"},
	} {
		args := append([]string{"lmc", a, b, "--json"}, tc.args...)
		if code, _, se := runCLI(t, args...); code != 2 || !strings.Contains(se, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, se, tc.want)
		}
	}
}
