package certify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/certify-mli/certify/nn"
)

// LMCLayers records a layer-wise line of linear mode connectivity in
// lmc.json (Vlaar & Frankle 2022's layer-wise interpolation, between two
// networks): only the tensors of the listed layers move from A to B, every
// other tensor is held at A or at B along the whole line.
type LMCLayers struct {
	// Layers are the --layers items as given: top-level layer indices
	// ("0") or state_dict prefixes ("1.body", "3.shortcut.0").
	Layers []string `json:"layers"`
	// Hold is where the other tensors stay: "a" (θA) or "b" (θB).
	Hold string `json:"hold"`
	// Moved lists the tensors that move (state_dict keys, sorted), buffers
	// of the listed layers (BatchNorm's running statistics) included.
	Moved []string `json:"moved_tensors"`
}

// ParseLayers splits a --layers value ("0,2", "1.body") into its items,
// trimming spaces. An empty value or item is an error.
func ParseLayers(spec string) ([]string, error) {
	var items []string
	for _, it := range strings.Split(spec, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			return nil, fmt.Errorf("--layers %q: empty item; want comma-separated layer indices or state_dict prefixes, e.g. 0,2 or 1.body", spec)
		}
		items = append(items, it)
	}
	return items, nil
}

// layerMatches reports whether state_dict key k belongs to the layer or
// prefix item: k is item or starts with item + ".".
func layerMatches(k, item string) bool {
	return k == item || strings.HasPrefix(k, item+".")
}

// LayerEndpoints returns the endpoints of the layer-wise line from a to b:
// the tensors under any of layers (see LMCLayers.Layers; none: nothing
// moves) go from a's to b's value, every other tensor is a's at both ends
// (hold "a") or b's (hold "b"). The tensors are shared with a and b, not
// copied. It returns the moved keys, sorted. An item that selects no
// tensor of a, or a hold other than "a" or "b", is an error naming it and
// the layers that have tensors.
func LayerEndpoints(a, b nn.State, layers []string, hold string) (start, end nn.State, moved []string, err error) {
	if hold != "a" && hold != "b" {
		return nil, nil, nil, fmt.Errorf("--hold: want a or b, found %q", hold)
	}
	for _, it := range layers {
		found := false
		for k := range a {
			found = found || layerMatches(k, it)
		}
		if !found {
			var have []string
			for k := range a {
				l := k[:strings.LastIndex(k, ".")]
				if !slices.Contains(have, l) {
					have = append(have, l)
				}
			}
			slices.Sort(have)
			return nil, nil, nil, fmt.Errorf("--layers: %s selects no tensor (the layers with tensors are %s)", it, strings.Join(have, ", "))
		}
	}
	start, end = nn.State{}, nn.State{}
	for k, ta := range a {
		tb, ok := b[k]
		if !ok {
			return nil, nil, nil, fmt.Errorf("--layers: tensor %s missing in B", k)
		}
		mv := false
		for _, it := range layers {
			mv = mv || layerMatches(k, it)
		}
		switch {
		case mv:
			start[k], end[k] = ta, tb
			moved = append(moved, k)
		case hold == "a":
			start[k], end[k] = ta, ta
		default:
			start[k], end[k] = tb, tb
		}
	}
	slices.Sort(moved)
	return start, end, moved, nil
}
