package torchpt

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/certify-mli/certify/nn/safetensors"
)

// ErrFormat is wrapped by errors for a file that is not a torch.save zip
// archive of the expected layout (no data.pkl, a legacy pre-1.6 pickle, a
// big-endian archive, a storage record shorter than its tensors).
var ErrFormat = errors.New("not a readable torch.save archive")

// MaxPickleSize bounds data.pkl, in bytes (a state_dict's pickle holds only
// names and small tuples; the tensors' data are separate records).
const MaxPickleSize = 64 << 20

// storageDType maps torch's typed storage class names to safetensors dtypes.
var storageDType = map[string]string{
	"DoubleStorage": "F64", "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
	"LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
	"ByteStorage": "U8", "BoolStorage": "BOOL",
}

// Tensor is a tensor read from a torch archive: dtype (a safetensors dtype
// name), shape, and its elements in C order in Float (floating dtypes, as
// float64, exactly) or Int (integer dtypes). Parameter is true for an
// nn.Parameter (torch._utils._rebuild_parameter), false for a buffer or a
// plain tensor.
type Tensor struct {
	DType     string
	Shape     []int
	Float     []float64
	Int       []int64
	Parameter bool
}

// storage is a persistent-id reference to a record of the archive.
type storage struct {
	dtype string
	key   string
	numel int
	data  []byte // loaded on first use
}

// Magic reports what the first bytes of a file look like: "zip" (PK\x03\x04:
// a torch ≥ 1.6 archive or an .npz), "pickle" (0x80 and a protocol byte: a
// legacy torch.save or a raw pickle), or "".
func Magic(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return "zip"
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5:
		return "pickle"
	}
	return ""
}

// Read reads the object saved by torch.save at path (the zip format of
// torch ≥ 1.6: ARCHIVE/data.pkl and one record ARCHIVE/data/KEY per
// storage). It returns the unpickled value: a *Dict for a state_dict (or a
// dict wrapping one), with tensors as *Tensor, lists as *List, tuples as
// Tuple, and Python scalars as int64, float64, bool, string, []byte or nil.
//
// No code from the file is run: the pickle is interpreted by a restricted
// machine that admits only collections.OrderedDict, torch's typed storages
// and torch._utils' tensor and parameter rebuilders; any other global
// (os.system, builtins.eval, a model class from torch.save(model)) is
// refused with an error wrapping ErrRefused, before anything is applied.
// Memory is bounded by the file: a storage's declared size must fit its
// record, and a tensor may not hold more elements than its storage.
func Read(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	v, err := ReadFrom(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ReadFrom is Read on an archive of size bytes read through r.
func ReadFrom(r io.ReaderAt, size int64) (any, error) {
	var head [4]byte
	if n, _ := r.ReadAt(head[:], 0); Magic(head[:n]) == "pickle" {
		return nil, fmt.Errorf("%w: a legacy torch.save file (torch < 1.6 or _use_new_zipfile_serialization=False): load and re-save it with torch ≥ 1.6", ErrFormat)
	}
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	files := map[string]*zip.File{}
	prefix := ""
	for _, f := range z.File {
		files[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(f.Name, "/") == 1 {
			prefix = dir
		}
	}
	if prefix == "" {
		if _, ok := files["data.pkl"]; !ok {
			for n := range files {
				if strings.HasSuffix(n, ".npy") {
					return nil, fmt.Errorf("%w: a zip of .npy files (an .npz archive), not a torch.save archive", ErrFormat)
				}
			}
			return nil, fmt.Errorf("%w: no ARCHIVE/data.pkl in the zip", ErrFormat)
		}
	}
	if bo, ok := files[prefix+"byteorder"]; ok {
		b, err := readRecord(bo, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: byteorder: %v", ErrFormat, err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("%w: byteorder %q (only little-endian archives are read)", ErrFormat, s)
		}
	}
	pkl, err := readRecord(files[prefix+"data.pkl"], MaxPickleSize)
	if err != nil {
		return nil, fmt.Errorf("%w: data.pkl: %v", ErrFormat, err)
	}
	storages := map[string]*storage{}
	pers := func(pid any) (any, error) {
		t, ok := pid.(Tuple)
		if !ok || len(t) != 5 || t[0] != "storage" {
			return nil, fmt.Errorf("%w: persistent id %s (want ('storage', type, key, location, numel))", ErrRefused, describe(pid))
		}
		g, ok1 := t[1].(Global)
		key, ok2 := t[2].(string)
		numel, ok3 := t[4].(int64)
		if !ok1 || !ok2 || !ok3 || g.Module != "torch" || storageDType[g.Name] == "" || numel < 0 {
			return nil, fmt.Errorf("%w: persistent id %s", ErrPickle, describe(pid))
		}
		if s, ok := storages[key]; ok {
			if s.dtype != storageDType[g.Name] || s.numel != int(numel) {
				return nil, fmt.Errorf("%w: storage %q declared twice with different types or sizes", ErrPickle, key)
			}
			return s, nil
		}
		rec, ok := files[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("%w: storage record data/%s is missing", ErrFormat, key)
		}
		need, ok := safetensors.ByteSize([]int{int(numel)}, safetensors.DTypeSize(storageDType[g.Name]))
		if !ok || need > rec.UncompressedSize64 {
			return nil, fmt.Errorf("%w: storage data/%s declares %d elements of %s, its record holds %d bytes", ErrFormat, key, numel, g.Name, rec.UncompressedSize64)
		}
		// The record may be compressed: cap what it may inflate to (deflate
		// expands at most ~1032:1), so a hostile header cannot make us
		// allocate more than the file could hold.
		if rec.Method != zip.Store && need > 1100*rec.CompressedSize64+64 {
			return nil, fmt.Errorf("%w: storage data/%s declares %d bytes from %d compressed bytes", ErrFormat, key, need, rec.CompressedSize64)
		}
		data, err := readPrefix(rec, int64(need))
		if err != nil {
			return nil, fmt.Errorf("%w: data/%s: %v", ErrFormat, key, err)
		}
		if uint64(len(data)) < need {
			return nil, fmt.Errorf("%w: storage data/%s: %d bytes, %d declared", ErrFormat, key, len(data), need)
		}
		s := &storage{dtype: storageDType[g.Name], key: key, numel: int(numel), data: data}
		storages[key] = s
		return s, nil
	}
	calls := map[Global]callable{
		{"collections", "OrderedDict"}: func(args Tuple) (any, error) {
			if len(args) != 0 {
				return nil, fmt.Errorf("%w: OrderedDict with arguments", ErrRefused)
			}
			return NewDict(), nil
		},
		{"torch._utils", "_rebuild_tensor_v2"}:            rebuildTensor,
		{"torch._utils", "_rebuild_parameter"}:            rebuildParameter,
		{"torch._utils", "_rebuild_parameter_with_state"}: rebuildParameter,
	}
	return unpickle(pkl, pers, calls)
}

// readRecord reads a zip member, at most limit bytes (more is an error).
func readRecord(f *zip.File, limit int64) ([]byte, error) {
	if f == nil {
		return nil, errors.New("missing")
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// maxRank is the largest tensor rank read.
const maxRank = 32

// readPrefix reads the first n bytes of a zip member (fewer if it is shorter).
func readPrefix(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]): the tensor of
// the given size whose element (i0, …) is storage[offset + Σ ik·stride_k].
func rebuildTensor(args Tuple) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("%w: %d arguments", ErrPickle, len(args))
	}
	s, ok := args[0].(*storage)
	off, ok2 := args[1].(int64)
	size, ok3 := ints(args[2])
	stride, ok4 := ints(args[3])
	if !ok || !ok2 || !ok3 || !ok4 || len(size) != len(stride) || off < 0 {
		return nil, fmt.Errorf("%w: arguments %s", ErrPickle, describe(args))
	}
	if len(size) > maxRank {
		return nil, fmt.Errorf("%w: a tensor of rank %d (at most %d is read)", ErrFormat, len(size), maxRank)
	}
	n := 1
	for k, d := range size {
		if d < 0 || stride[k] < 0 {
			return nil, fmt.Errorf("%w: negative size or stride %v/%v", ErrPickle, size, stride)
		}
		if d == 0 {
			n = 0
		}
	}
	if n > 0 {
		// Every element must lie in the storage: offset + Σ (size_k − 1)·stride_k
		// < numel, checked term by term so that nothing overflows, and the
		// view may not hold more elements than the storage (stride 0).
		maxIdx := off
		for k, d := range size {
			if d > int64(s.numel) || n > s.numel {
				return nil, fmt.Errorf("%w: a tensor of size %v from a storage of %d elements (overlapping views are not read)", ErrFormat, size, s.numel)
			}
			n *= int(d)
			if d > 1 && stride[k] >= int64(s.numel) || maxIdx >= int64(s.numel) {
				maxIdx = int64(s.numel)
				break
			}
			maxIdx += (d - 1) * stride[k]
		}
		if n > s.numel {
			return nil, fmt.Errorf("%w: a tensor of size %v from a storage of %d elements (overlapping views are not read)", ErrFormat, size, s.numel)
		}
		if maxIdx >= int64(s.numel) {
			return nil, fmt.Errorf("%w: size %v, stride %v and offset %d reach beyond a storage of %d elements", ErrFormat, size, stride, off, s.numel)
		}
	}
	es := safetensors.DTypeSize(s.dtype)
	buf := make([]byte, 0, n*es)
	if n > 0 {
		idx := make([]int64, len(size))
		for c := 0; c < n; c++ {
			p := off
			for k, i := range idx {
				p += i * stride[k]
			}
			buf = append(buf, s.data[int(p)*es:int(p+1)*es]...)
			for k := len(idx) - 1; k >= 0; k-- {
				idx[k]++
				if idx[k] < size[k] {
					break
				}
				idx[k] = 0
			}
		}
	}
	f, i, err := safetensors.DecodeValues(s.dtype, buf)
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(size))
	for k, d := range size {
		shape[k] = int(d)
	}
	return &Tensor{DType: s.dtype, Shape: shape, Float: f, Int: i}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks[, state]).
func rebuildParameter(args Tuple) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("%w: no arguments", ErrPickle)
	}
	t, ok := args[0].(*Tensor)
	if !ok {
		return nil, fmt.Errorf("%w: a parameter of %T", ErrPickle, args[0])
	}
	p := *t
	p.Parameter = true
	return &p, nil
}

// ints converts a tuple of int64 (torch.Size, a stride) to []int64.
func ints(v any) ([]int64, bool) {
	t, ok := v.(Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// describe renders a pickled value briefly for error messages. It stops
// after about 120 characters: a pickle can nest tuples that share their
// items (t1 = (t0, t0), t2 = (t1, t1), …), whose full rendering grows
// exponentially with the pickle's size.
func describe(v any) string {
	var b strings.Builder
	describeTo(&b, v, 0)
	s := b.String()
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func describeTo(b *strings.Builder, v any, depth int) {
	if b.Len() > 120 {
		return
	}
	if depth > 8 {
		b.WriteString("…")
		return
	}
	switch x := v.(type) {
	case Tuple:
		b.WriteString("(")
		for i, it := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			describeTo(b, it, depth+1)
			if b.Len() > 120 {
				return
			}
		}
		b.WriteString(")")
	case *List:
		fmt.Fprintf(b, "[list of %d]", len(x.Items))
	case *Dict:
		fmt.Fprintf(b, "{dict of %d}", len(x.Keys))
	case *Tensor:
		fmt.Fprintf(b, "tensor %s %v", x.DType, x.Shape)
	case *storage:
		fmt.Fprintf(b, "storage %s %q of %d", x.dtype, x.key, x.numel)
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		fmt.Fprintf(b, "%q", x)
	case []byte:
		fmt.Fprintf(b, "bytes of %d", len(x))
	default:
		fmt.Fprintf(b, "%v", x)
	}
}
