package torchpt

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/certify-mli/certify/nn/safetensors"
)

// ErrNotStateDict is wrapped by StateDict's errors: the object is not a
// state_dict (a dict of tensors) and holds none under a known key.
var ErrNotStateDict = errors.New("not a state_dict")

// WrapperKeys are the keys under which a saved dict may hold the model's
// state_dict (torch.save({"state_dict": model.state_dict(), "epoch": …})),
// tried in this order.
var WrapperKeys = []string{"state_dict", "model", "model_state_dict"}

// KeyPrefixes are the key prefixes added by common wrappers: "module." by
// nn.DataParallel and DistributedDataParallel, "_orig_mod." by
// torch.compile. StripPrefixes removes them.
var KeyPrefixes = []string{"module.", "_orig_mod."}

// StateDict extracts a state_dict from v, the value Read returned: a dict
// whose keys are all strings and whose values are all tensors. A dict that
// is not one but holds one under a WrapperKeys key is unwrapped. The tensors
// are returned in the dict's order as safetensors tensors (floating values
// in Float, integer buffers such as num_batches_tracked in Int), with notes
// saying what was unwrapped. Errors name the offending key.
func StateDict(v any) ([]safetensors.Tensor, []string, error) {
	d, ok := v.(*Dict)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the file holds a %s", ErrNotStateDict, typeName(v))
	}
	var notes []string
	if !isStateDict(d) {
		found := false
		for _, k := range WrapperKeys {
			if w, ok := d.Get(k); ok {
				if wd, ok := w.(*Dict); ok && isStateDict(wd) {
					notes = append(notes, fmt.Sprintf("the state_dict was unwrapped from the saved dict's key %q (other keys ignored: %s)", k, otherKeys(d, k)))
					d, found = wd, true
					break
				}
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("%w: a dict with keys %s, holding no state_dict under %s; save model.state_dict()", ErrNotStateDict, otherKeys(d, ""), strings.Join(WrapperKeys, ", "))
		}
	}
	ts := make([]safetensors.Tensor, 0, len(d.Keys))
	for i, k := range d.Keys {
		t := d.Vals[i].(*Tensor)
		ts = append(ts, safetensors.Tensor{Name: k.(string), DType: t.DType, Shape: t.Shape, Float: t.Float, Int: t.Int})
	}
	return ts, notes, nil
}

// isStateDict reports whether d is non-empty with string keys and tensor values.
func isStateDict(d *Dict) bool {
	if len(d.Keys) == 0 {
		return false
	}
	for i, k := range d.Keys {
		if _, ok := k.(string); !ok {
			return false
		}
		if _, ok := d.Vals[i].(*Tensor); !ok {
			return false
		}
	}
	return true
}

func otherKeys(d *Dict, except string) string {
	var ks []string
	for _, k := range d.Keys {
		if k != except {
			ks = append(ks, fmt.Sprintf("%q", fmt.Sprint(k)))
		}
	}
	if len(ks) > 8 {
		ks = append(ks[:8], "…")
	}
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

func typeName(v any) string {
	switch v.(type) {
	case *Tensor:
		return "single tensor"
	case *List:
		return "list"
	case Tuple:
		return "tuple"
	case nil:
		return "None"
	}
	return fmt.Sprintf("%T", v)
}

// StripPrefixes removes, repeatedly, a prefix of KeyPrefixes shared by every
// name (DataParallel's "module.", torch.compile's "_orig_mod."), in place,
// and returns the prefixes removed in order. Names with mixed prefixes are
// left alone.
func StripPrefixes(ts []safetensors.Tensor) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	removed := WrapperPrefixes(names)
	cut := len(strings.Join(removed, ""))
	for i := range ts {
		ts[i].Name = ts[i].Name[cut:]
	}
	return removed
}

// WrapperPrefixes returns, in order, the prefixes of KeyPrefixes that every
// name carries one after the other (e.g. ["module.", "_orig_mod."] for
// "module._orig_mod.0.weight", …); removing their concatenation from each
// name gives the wrapped model's keys. Nil when the names are not all
// wrapped alike, or when no name would be left.
func WrapperPrefixes(names []string) []string {
	var removed []string
	cut := 0
	for len(names) > 0 {
		stripped := false
		for _, p := range KeyPrefixes {
			all := true
			for _, n := range names {
				if !strings.HasPrefix(n[cut:], p) || len(n) == cut+len(p) {
					all = false
					break
				}
			}
			if all {
				cut += len(p)
				removed = append(removed, p)
				stripped = true
			}
		}
		if !stripped {
			break
		}
	}
	return removed
}

// Names returns the tensor names, sorted.
func Names(ts []safetensors.Tensor) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	sort.Strings(out)
	return out
}
