package main

import (
	"strings"
	"testing"
)

// TestHelpSaysSerialProducts: the help of the flags that set OpenBLAS's
// threads says that the certificate and accuracy-bound phases use one
// OpenBLAS thread per worker whatever they say (blasbackend.SerialProducts;
// the last round found `certify bench -h` silent about it): bench's
// --threads and the analysis' --workers (the analysis has no --threads; its
// OpenBLAS threads come from OPENBLAS_NUM_THREADS).
func TestHelpSaysSerialProducts(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{{[]string{"bench", "-h"}, "-threads"}, {[]string{"--help"}, "-workers"}} {
		code, out, e := runCLI(t, c.args...)
		out += e
		if code != 0 {
			t.Fatalf("%v: exit %d", c.args, code)
		}
		// the flag's usage is the indented line after "  -flag int"
		lines := strings.Split(out, "\n")
		var usage string
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), c.flag+" ") && i+1 < len(lines) {
				usage = lines[i+1]
			}
		}
		for _, want := range []string{"certificate", "accuracy", "one OpenBLAS thread", "whatever"} {
			if !strings.Contains(usage, want) {
				t.Errorf("%v: %s's help %q does not say %q", c.args, c.flag, usage, want)
			}
		}
	}
}
