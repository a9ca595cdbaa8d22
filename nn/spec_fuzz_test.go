package nn_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"time"

	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// FuzzReadSpec feeds arbitrary model.json bytes to nn.ParseSpec, ReadSpec's
// decoder (seeded with
// the PyTorch reference runs' model.json files and a few edge cases). It
// must not panic; it either refuses the file with an error naming it, or
// returns a spec that builds, survives a Marshal/ParseSpec round trip (what
// Write writes and ReadSpec reads) with
// the same parameter shapes, and (when small) evaluates to finite outputs
// of the model's output width on random θ and inputs.
func FuzzReadSpec(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/torchref/*/model.json")
	if len(seeds) == 0 {
		f.Fatal("no seed model.json under ../testdata/torchref")
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// Compact: the fuzzer minimises every input that finds new
		// coverage by deleting bytes, which takes time growing with the
		// square of its length; the indented files are 3 to 4 times longer.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		f.Add(c.Bytes())
	}
	for _, s := range []string{
		`{"format":"sequential/v1","input_shape":[3],"loss":"mse","layers":[{"type":"batchnorm1d"},{"type":"linear","in":3,"out":2}]}`,
		`{"format":"sequential/v1","input_shape":[1,2,2],"loss":"mse","layers":[{"type":"conv2d","in":1,"out":1,"kernel":3}]}`,
		`{"format":"sequential/v1","input_shape":[2],"loss":"cross_entropy","layers":[{"type":"residual","body":[{"type":"relu"}]},{"type":"linear","in":2,"out":2,"bias":false}]}`,
		`{"format":"sequential/v1","input_shape":[1,3,3],"loss":"mse","layers":[{"type":"residual","body":[{"type":"residual","body":[{"type":"maxpool2d","kernel":[1,2],"padding":[0,1],"stride":1}]}]}]}`,
		`{"format":"sequential/v1","input_shape":[2,1,1],"loss":"mse","layers":[{"type":"adaptive_avgpool2d","output":[4294967296,1]}]}`,
	} {
		f.Add([]byte(s))
	}
	capMinimizeTime(5 * time.Second)
	// Everything stays in memory (ParseSpec, Marshal): with a file write
	// and Spec.Write's fsyncs per input, minimising an input that found new
	// coverage ran thousands of fsyncs, and on a busy disk the fuzzer showed
	// "execs: N (0/sec)" for tens of seconds (or its worker passed the
	// 10-second per-input limit and was reported as hung).
	const file = "fuzz/model.json"
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := nn.ParseSpec(file, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), file+": ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		m, err := nn.Build(s)
		if err != nil {
			t.Fatalf("ReadSpec accepted what Build refuses: %v", err)
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := nn.ParseSpec(file, again)
		if err != nil {
			t.Fatalf("a spec ReadSpec accepted does not read back after Write: %v", err)
		}
		m2, err := nn.Build(s2)
		if err != nil {
			t.Fatal(err)
		}
		e1, e2 := m.Expected(), m2.Expected()
		if len(e1) != len(e2) {
			t.Fatalf("round trip: %d tensors, then %d", len(e1), len(e2))
		}
		params := 0
		for i := range e1 {
			if e1[i].Key != e2[i].Key || !sameInts(e1[i].Shape, e2[i].Shape) {
				t.Fatalf("round trip: %s %v, then %s %v", e1[i].Key, e1[i].Shape, e2[i].Key, e2[i].Shape)
			}
			n := 1
			for _, d := range e1[i].Shape {
				n *= d
			}
			params += n
		}
		widest := s.InputSize()
		_ = m.WalkSites(func(_ nn.Site, l nn.Layer) error { widest = max(widest, l.OutSize()); return nil })
		if params > 1e4 || widest > 1e4 {
			return // too large to evaluate in a fuzz iteration
		}
		rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
		st := testnets.RandomState(m, rng, 0.5)
		if err := m.Check(st, "fuzz"); err != nil {
			t.Fatalf("a state of Expected's shapes fails Check: %v", err)
		}
		x := mat.NewDense(2, s.InputSize(), nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		out := m.Forward(st, x)
		if r, c := out.Dims(); r != 2 || c != m.OutSize() {
			t.Fatalf("Forward gives [%d, %d], want [2, %d]", r, c, m.OutSize())
		}
		for _, v := range out.RawMatrix().Data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite output %v", v)
			}
		}
	})
}

// capMinimizeTime sets -test.fuzzminimizetime to d unless the command line
// set it. Go's fuzzer minimises each input that finds new coverage before
// counting it (and the executions spent on it), for up to a minute by
// default; on a ~600-byte model.json that took the whole minute at about
// 2000 executions a second, so "go test -fuzz FuzzReadSpec -fuzztime 30s"
// printed "execs: 33 (0/sec)" from its sixth second to its end and fuzzed
// nothing new. The flag is read when f.Fuzz starts the coordinator.
func capMinimizeTime(d time.Duration) {
	set := false
	flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
	if fl := flag.Lookup("test.fuzzminimizetime"); fl != nil && !set {
		_ = fl.Value.Set(d.String())
	}
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
