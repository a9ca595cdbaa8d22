package certify

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestVerdictJSON: each verdict is written as RUN_FORMAT.md spells it and
// reads back to itself.
func TestVerdictJSON(t *testing.T) {
	for _, c := range []struct {
		v    Verdict
		want string
	}{
		{CertifiedMonotone, `"certified_monotone"`},
		{MonotoneOnGrid, `"monotone_on_grid"`},
		{NonMonotone, `"non_monotone"`},
		{Inconclusive, `"inconclusive"`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%s: JSON %s (%v), want %s", c.v, b, err, c.want)
		}
		var back Verdict
		if err := json.Unmarshal(b, &back); err != nil || back != c.v {
			t.Errorf("%s: read back as %q (%v)", c.want, back, err)
		}
	}
}

func ExampleVerdict_String() {
	fmt.Println(NonMonotone)
	// Output: non_monotone
}
