package torchpt

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// expectedTensor is one entry of testdata/expected.json, written by
// testdata/gen.py from the tensors torch itself holds.
type expectedTensor struct {
	DType     string    `json:"dtype"`
	Shape     []int     `json:"shape"`
	Values    []float64 `json:"values"`
	Parameter bool      `json:"parameter"`
}

var torchDType = map[string]string{
	"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16",
	"int64": "I64", "int32": "I32", "uint8": "U8", "bool": "BOOL",
}

// TestReadAgainstTorch reads the committed torch.save archives (pickle
// protocols 2 and 4) and compares every tensor — dtype, shape, values,
// parameter flag — with what torch held when gen.py saved it, including a
// transposed view, a view with a storage offset and a shared storage.
func TestReadAgainstTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]expectedTensor
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"tensors.pt", "tensors_proto4.pt"} {
		t.Run(file, func(t *testing.T) {
			v, err := Read(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			d, ok := v.(*Dict)
			if !ok {
				t.Fatalf("got %T, want *Dict", v)
			}
			if len(d.Keys) != len(want) {
				t.Fatalf("%d keys, want %d", len(d.Keys), len(want))
			}
			for i, k := range d.Keys {
				name := k.(string)
				w, ok := want[name]
				if !ok {
					t.Fatalf("unexpected key %q", name)
				}
				got := d.Vals[i].(*Tensor)
				if got.DType != torchDType[w.DType] {
					t.Errorf("%s: dtype %s, want %s", name, got.DType, w.DType)
				}
				if !equalInts(got.Shape, w.Shape) {
					t.Errorf("%s: shape %v, want %v", name, got.Shape, w.Shape)
				}
				if got.Parameter != w.Parameter {
					t.Errorf("%s: parameter %v, want %v", name, got.Parameter, w.Parameter)
				}
				vals := got.Float
				if vals == nil {
					for _, x := range got.Int {
						vals = append(vals, float64(x))
					}
				}
				if len(vals) != len(w.Values) {
					t.Fatalf("%s: %d values, want %d", name, len(vals), len(w.Values))
				}
				for j := range vals {
					if vals[j] != w.Values[j] {
						t.Errorf("%s[%d] = %v, torch %v", name, j, vals[j], w.Values[j])
					}
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
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

const evilMarker = "/tmp/certify_torchpt_evil_marker"

// TestMaliciousPickleIsInert reads evil.pt, whose pickle calls os.system
// ("touch MARKER") when Python unpickles it: the reader refuses the global
// posix.system by name and the marker file is not created. When python3 with
// torch is installed, the test first proves the fixture is really malicious:
// pickle.loads of its data.pkl in Python does create the marker.
func TestMaliciousPickleIsInert(t *testing.T) {
	os.Remove(evilMarker)
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		script := `import zipfile, pickle, sys
z = zipfile.ZipFile(sys.argv[1])
pickle.loads(z.read("evil/data.pkl"))`
		if out, err := exec.Command("/usr/bin/python3", "-c", script, "testdata/evil.pt").CombinedOutput(); err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		if _, err := os.Stat(evilMarker); err != nil {
			t.Fatalf("the fixture is not malicious after all: Python's pickle did not create %s", evilMarker)
		}
		os.Remove(evilMarker)
	}
	v, err := Read("testdata/evil.pt")
	if err == nil {
		t.Fatalf("evil.pt read without error: %v", v)
	}
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "posix.system") {
		t.Errorf("error %q: want ErrRefused naming posix.system", err)
	}
	if _, err := os.Stat(evilMarker); err == nil {
		os.Remove(evilMarker)
		t.Fatal("reading evil.pt ran its command")
	}
}

// TestRefusals: a legacy pre-1.6 file, a pickled module, an npz, and
// hand-made pickles asking for builtins.eval or NEWOBJ are refused with
// errors naming the reason.
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		file string
		is   error
		msg  string
	}{
		{"testdata/legacy.pt", ErrFormat, "legacy torch.save"},
		{"testdata/module.pt", ErrRefused, "save model.state_dict() instead"},
	} {
		_, err := Read(c.file)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.file, err, c.is, c.msg)
		}
	}
	for _, c := range []struct {
		name   string
		pickle string
		is     error
		msg    string
	}{
		{"eval", "\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.", ErrRefused, "builtins.eval"},
		{"newobj", "\x80\x02ccollections\nOrderedDict\n)\x81.", ErrRefused, "arbitrary object"},
		{"inst", "\x80\x02(iposix\nsystem\n.", ErrRefused, "arbitrary object"},
		{"stack global", "\x80\x04\x8c\x02os\x8c\x06system\x93.", ErrRefused, "os.system"},
		{"reduce on a non-global", "\x80\x02X\x01\x00\x00\x00a)R.", ErrPickle, "REDUCE"},
		{"truncated", "\x80\x02X\xff\xff\xff\x7fab", ErrPickle, "truncated"},
		{"bad memo", "\x80\x02h\x05.", ErrPickle, "never stored"},
		{"underflow", "\x80\x02t.", ErrPickle, "MARK"},
		{"persid outside archive", "\x80\x02)Q.", ErrRefused, "persistent id"},
	} {
		_, err := ReadFrom(bytes.NewReader(zipOf(t, map[string]string{"a/data.pkl": c.pickle})), int64(len(zipOf(t, map[string]string{"a/data.pkl": c.pickle}))))
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.name, err, c.is, c.msg)
		}
	}
}

// TestHugeDeclaredSizes: a storage declaring 2⁶⁰ elements, or a tensor view
// larger than its storage (stride 0), is refused before anything of that
// size is allocated.
func TestHugeDeclaredSizes(t *testing.T) {
	// {'w': _rebuild_tensor_v2(persid(('storage', FloatStorage, '0', 'cpu', N)), 0, size, stride, False, OrderedDict())}
	mk := func(numel, size, stride string) []byte {
		p := "\x80\x02}X\x01\x00\x00\x00w" +
			"ctorch._utils\n_rebuild_tensor_v2\n(" +
			"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu" + numel + "tQ" +
			"K\x00" + size + stride + "\x89ccollections\nOrderedDict\n)RtRs."
		return zipOf(t, map[string]string{"a/data.pkl": p, "a/data/0": "\x00\x00\x80\x3f" + strings.Repeat("\x00", 12)})
	}
	for _, c := range []struct {
		name, numel, size, stride, msg string
	}{
		{"storage 2^60", "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10", "K\x01\x85", "K\x01\x85", "declares"},
		{"view 2^40 from 1 element", "K\x01", "\x8a\x06\x00\x00\x00\x00\x00\x01\x85", "K\x00\x85", "overlapping views"},
		{"stride beyond storage", "K\x02", "K\x02\x85", "K\x02\x85", "beyond a storage of 2"},
		{"stride overflowing", "K\x02", "K\x02\x85", "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x85", "beyond a storage of 2"},
		{"size overflowing", "K\x04", "K\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x86", "K\x01K\x01\x86", "overlapping views"},
	} {
		z := mk(c.numel, c.size, c.stride)
		_, err := ReadFrom(bytes.NewReader(z), int64(len(z)))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.msg)
		}
	}
	// The well-formed version reads the one float.
	z := mk("K\x01", "K\x01\x85", "K\x01\x85")
	v, err := ReadFrom(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := v.(*Dict).Get("w")
	if got := w.(*Tensor).Float; len(got) != 1 || got[0] != 1 {
		t.Errorf("w = %v, want [1]", got)
	}
}

// TestSharedTupleErrorIsShort: a pickle nesting tuples that share their
// items 60 levels deep (2⁶⁰ leaves if rendered in full) and then using one
// as a persistent id gets a short error, at once.
func TestSharedTupleErrorIsShort(t *testing.T) {
	p := "\x80\x02K\x01"
	for i := 0; i < 60; i++ {
		p += "q\x00h\x00\x86" // memo the top, push it again, pair them
	}
	p += "Q."
	z := zipOf(t, map[string]string{"a/data.pkl": p})
	_, err := ReadFrom(bytes.NewReader(z), int64(len(z)))
	if !errors.Is(err, ErrRefused) || len(err.Error()) > 300 {
		t.Errorf("error %v", err)
	}
}

// zipOf makes a zip archive of stored members.
func zipOf(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, data := range files {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(data))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStateDictUnwrapAndPrefixes: a wrapped dict is unwrapped with a note,
// the DataParallel and torch.compile prefixes are stripped in turn, and a
// dict of non-tensors is refused naming its keys.
func TestStateDictUnwrapAndPrefixes(t *testing.T) {
	sd := NewDict()
	sd.Set("module._orig_mod.0.weight", &Tensor{DType: "F32", Shape: []int{1}, Float: []float64{1}})
	sd.Set("module._orig_mod.0.bias", &Tensor{DType: "F32", Shape: []int{1}, Float: []float64{2}})
	wrap := NewDict()
	wrap.Set("epoch", int64(3))
	wrap.Set("state_dict", sd)
	ts, notes, err := StateDict(wrap)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `"state_dict"`) || !strings.Contains(notes[0], `"epoch"`) {
		t.Errorf("notes %q", notes)
	}
	p := StripPrefixes(ts)
	if strings.Join(p, ",") != "module.,_orig_mod." || ts[0].Name != "0.weight" || ts[1].Name != "0.bias" {
		t.Errorf("stripped %v, names %s %s", p, ts[0].Name, ts[1].Name)
	}
	bad := NewDict()
	bad.Set("epoch", int64(3))
	bad.Set("lr", 0.1)
	if _, _, err := StateDict(bad); !errors.Is(err, ErrNotStateDict) || !strings.Contains(err.Error(), `"lr"`) {
		t.Errorf("error %v", err)
	}
	// Mixed prefixes are left alone.
	ts2 := ts[:0:0]
	ts2 = append(ts2, ts[0], ts[1])
	ts2[0].Name = "module.a"
	if p := StripPrefixes(ts2); len(p) != 0 {
		t.Errorf("stripped %v from mixed names", p)
	}
}

// FuzzRead feeds arbitrary bytes to the archive reader, seeded with the
// committed archives: it must return a value or an error, never panic,
// and allocate no more than the input allows (a storage must fit its
// record; a view may not exceed its storage).
func FuzzRead(f *testing.F) {
	for _, name := range []string{"tensors.pt", "tensors_proto4.pt", "evil.pt", "legacy.pt", "module.pt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ReadFrom(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			StateDict(v)
		}
	})
}

// FuzzUnpickle fuzzes the pickle machine alone (inside a minimal archive
// whose storage records hold 64 bytes).
func FuzzUnpickle(f *testing.F) {
	for _, name := range []string{"tensors.pt", "tensors_proto4.pt", "evil.pt"} {
		z, err := zip.OpenReader(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range z.File {
			if strings.HasSuffix(m.Name, "data.pkl") {
				b, _ := readRecord(m, MaxPickleSize)
				f.Add(b)
			}
		}
		z.Close()
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		files := map[string]string{"a/data.pkl": string(p)}
		for _, k := range []string{"0", "1", "2", "3"} {
			files["a/data/"+k] = strings.Repeat("\x01", 64)
		}
		z := zipOf(t, files)
		v, err := ReadFrom(bytes.NewReader(z), int64(len(z)))
		if err == nil {
			StateDict(v)
		}
	})
}
