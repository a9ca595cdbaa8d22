package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/certify-mli/certify/internal/blasbackend"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// blasEnv names the environment variable that selects the BLAS of every
// certify command: unset or "auto" (OpenBLAS when the machine has it, else
// pure Go), "openblas", "go" (also "gonum", "purego": pure Go), or a library
// file. `certify bench` also has a --backend flag.
const blasEnv = "CERTIFY_BLAS"

var (
	blasOnce sync.Once
	blasUsed *blasbackend.Backend
	blasNote string
)

// setupBLAS selects the backend $CERTIFY_BLAS names (blasbackend.Select:
// self-tested against gonum on this machine) and installs it for the whole
// process, once; later calls return the same. A name that cannot be
// honoured, and a library that failed its self-test, are reported on stderr
// and pure Go runs instead: the command still runs.
func setupBLAS() *blasbackend.Backend {
	blasOnce.Do(func() {
		name := os.Getenv(blasEnv)
		b, note, err := blasbackend.Select(name)
		if err != nil {
			fmt.Fprintf(stderr, "certify: %s=%s: %v; using pure-Go BLAS\n", blasEnv, name, err)
			b, note = blasbackend.PureGo(), "pure-Go gonum BLAS ("+err.Error()+")"
		}
		for _, f := range b.SelfTestFailures {
			fmt.Fprintf(stderr, "certify: warning: BLAS %s; not used\n", f)
		}
		b.Use()
		blasUsed, blasNote = b, note
	})
	return blasUsed
}

// computes reports whether the command line args runs products worth a
// BLAS (training, analysing, sweeping, the demo), so that run selects it
// first; help, export, table and figures do not need it.
func computes(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch a := args[0]; a {
	case "train", "demo", "sweep", "analyze", "analyse":
		return true
	case "-h", "-help", "--help", "help":
		return false
	default:
		return len(a) > 0 && a[0] == '-'
	}
}

// blasEnvValue is the $CERTIFY_BLAS value that selects b again in a child
// process: its library file for a CBLAS library named by file, else its
// name.
func blasEnvValue(b *blasbackend.Backend) string {
	if b.Name == "cblas" && b.Library != "" {
		return b.Library
	}
	return b.Name
}

// benchBackend is the backend `certify bench --backend name` times: the
// process's own (setupBLAS: $CERTIFY_BLAS, else auto) when name is empty,
// else Select(name), where a name that cannot be honoured is bad input.
func benchBackend(name string) (*blasbackend.Backend, string, error) {
	if name == "" {
		b := setupBLAS()
		return b, blasNote, nil
	}
	b, note, err := blasbackend.Select(name)
	if err != nil {
		return nil, "", badInputf("bench: --backend %s: %v", name, err)
	}
	for _, f := range b.SelfTestFailures {
		fmt.Fprintf(stderr, "certify: warning: BLAS %s; not used\n", f)
	}
	return b, note, nil
}

// restoreBLAS records the installed blas64 and blas32 implementations and
// returns a function that reinstalls them.
func restoreBLAS() func() {
	d, s := blas64.Implementation(), blas32.Implementation()
	return func() { blas64.Use(d); blas32.Use(s) }
}
