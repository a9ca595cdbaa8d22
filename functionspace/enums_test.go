package functionspace

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEnums: Precision and BNPolicy parse from the report's strings, print
// and marshal to the same strings, and refuse anything else with an error
// naming the value (in JSON too).
func TestEnums(t *testing.T) {
	for _, c := range []struct {
		s     string
		parse func(string) (string, error)
		json  func(string) (string, error) // unmarshal then marshal
	}{
		{"float64", parsePrecision, jsonPrecision},
		{"float32", parsePrecision, jsonPrecision},
		{"interpolate", parseBN, jsonBN},
		{"recompute", parseBN, jsonBN},
		{"none", parseBN, jsonBN},
	} {
		if got, err := c.parse(c.s); err != nil || got != c.s {
			t.Errorf("parse %q = %q, %v", c.s, got, err)
		}
		if got, err := c.json(`"` + c.s + `"`); err != nil || got != `"`+c.s+`"` {
			t.Errorf("JSON round trip of %q = %s, %v", c.s, got, err)
		}
	}
	for _, bad := range []string{"", "float16", "Float32", "fp32", "interpolated", "Recompute"} {
		for name, parse := range map[string]func(string) (string, error){"precision": parsePrecision, "bn policy": parseBN} {
			if _, err := parse(bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
				t.Errorf("%s %q: error %v, want one naming the value", name, bad, err)
			}
		}
		if _, err := jsonPrecision(`"` + bad + `"`); err == nil {
			t.Errorf("precision JSON %q accepted", bad)
		}
		if _, err := json.Marshal(BNPolicy(bad)); err == nil {
			t.Errorf("BNPolicy(%q) marshalled", bad)
		}
	}
	if Float32.String() != "float32" || BNRecompute.String() != "recompute" {
		t.Errorf("String: %s, %s", Float32, BNRecompute)
	}
}

func parsePrecision(s string) (string, error) {
	p, err := ParsePrecision(s)
	return p.String(), err
}

func parseBN(s string) (string, error) {
	b, err := ParseBNPolicy(s)
	return b.String(), err
}

func jsonPrecision(s string) (string, error) {
	var v struct{ P Precision }
	if err := json.Unmarshal([]byte(`{"P":`+s+`}`), &v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v.P)
	return string(b), err
}

func jsonBN(s string) (string, error) {
	var v struct{ B BNPolicy }
	if err := json.Unmarshal([]byte(`{"B":`+s+`}`), &v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v.B)
	return string(b), err
}
