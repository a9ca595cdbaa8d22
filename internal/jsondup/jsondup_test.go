package jsondup

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a": 1, "b": [1, {"c": 2}]}`, ""},
		{`{"a": 1, "a": 2}`, "a: duplicate key"},
		{`{"layers": [{"type": "relu"}, {"type": "linear", "in": 3, "in": 4}]}`, "layers[1].in: duplicate key"},
		{`{"a": {"b": {"c": 1, "d": 2, "c": 3}}}`, "a.b.c: duplicate key"},
		{`[{"x": 1}, {"x": 2}]`, ""},
		{`{"a": `, ""}, // malformed: left to the decoder
	} {
		err := Check([]byte(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", c.in, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}
