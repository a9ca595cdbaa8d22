package torchpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrRefused is wrapped by every error for a pickle that asks for something
// this reader will not do: a global outside the allow-list (os.system,
// builtins.eval, a pickled nn.Module class, …), an instance-building opcode
// (NEWOBJ, INST, OBJ), an extension-registry opcode.
var ErrRefused = errors.New("refused")

// ErrPickle is wrapped by every error for a malformed pickle stream
// (truncated, stack underflow, unknown opcode, a memo index never stored).
var ErrPickle = errors.New("malformed pickle")

// Global is a (module, name) pair named by a GLOBAL or STACK_GLOBAL opcode
// and admitted by the allow-list: a storage type, OrderedDict, or one of
// torch's tensor rebuild functions.
type Global struct{ Module, Name string }

// String returns "module.name".
func (g Global) String() string { return g.Module + "." + g.Name }

// Tuple is a pickled Python tuple.
type Tuple []any

// List is a pickled Python list (a pointer: APPEND mutates it in place).
type List struct{ Items []any }

// Dict is a pickled dict or collections.OrderedDict, keys in insertion order.
// Keys are strings, int64, float64, bool or nil (hashable scalars); a
// tuple key is refused as malformed.
type Dict struct {
	Keys  []any
	Vals  []any
	index map[any]int
	// State is what a BUILD opcode set on the dict (an OrderedDict's
	// instance attributes, e.g. a state_dict's _metadata); kept, not used.
	State any
}

// NewDict returns an empty Dict.
func NewDict() *Dict { return &Dict{index: map[any]int{}} }

// Set inserts or replaces key k.
func (d *Dict) Set(k, v any) error {
	switch k.(type) {
	case string, int64, float64, bool, nil:
	default:
		return fmt.Errorf("%w: dict key of type %T (only strings and numbers are accepted)", ErrPickle, k)
	}
	if i, ok := d.index[k]; ok {
		d.Vals[i] = v
		return nil
	}
	d.index[k] = len(d.Keys)
	d.Keys = append(d.Keys, k)
	d.Vals = append(d.Vals, v)
	return nil
}

// Get returns the value of key k and whether it is present.
func (d *Dict) Get(k any) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.Vals[i], true
}

// persistentLoader resolves a BINPERSID id (torch: ('storage', type, key,
// location, numel)) to a value.
type persistentLoader func(pid any) (any, error)

// callable is an allowed global applied by REDUCE.
type callable func(args Tuple) (any, error)

// allowedGlobal is the allow-list: the only globals a torch state_dict (or a
// dict wrapping one with plain Python values) needs. Everything else is
// refused at the GLOBAL opcode, before any REDUCE could apply it.
func allowedGlobal(module, name string) bool {
	switch module + "." + name {
	case "collections.OrderedDict",
		"torch._utils._rebuild_tensor_v2",
		"torch._utils._rebuild_parameter",
		"torch._utils._rebuild_parameter_with_state":
		return true
	}
	if module == "torch" && storageDType[name] != "" {
		return true
	}
	return false
}

// refusal explains why a global is refused, with advice for the common cases.
func refusal(module, name string) error {
	hint := "certify's pickle reader loads only tensors and plain containers (a state_dict); it never runs code from a file"
	switch {
	case module == "__main__" || strings.HasPrefix(module, "torch.nn.modules"):
		hint = "this looks like torch.save(model), which pickles the module's class: save model.state_dict() instead"
	case strings.HasPrefix(module, "torch.optim"):
		hint = "a pickled optimizer object: save optimizer.state_dict() or only the model's state_dict"
	case strings.HasPrefix(module, "numpy"):
		hint = "numpy objects inside a torch checkpoint are not read: store tensors or plain Python numbers"
	}
	return fmt.Errorf("%w: global %s.%s: %s", ErrRefused, module, name, hint)
}

// unpickler is a restricted pickle virtual machine: it builds Python values
// as Go values and executes nothing but the allow-listed constructors above.
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint32]any
	pers  persistentLoader
	calls map[Global]callable
}

// mark is the stack sentinel of the MARK opcode.
type mark struct{}

// unpickle runs the pickle in data. Every opcode consumes at least one
// byte and pushes at most one value, so the stack and the memo stay within
// one entry per byte of the stream.
func unpickle(data []byte, pers persistentLoader, calls map[Global]callable) (any, error) {
	u := &unpickler{data: data, memo: map[uint32]any{}, pers: pers, calls: calls}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("at byte %d: %w", u.pos, err)
	}
	return v, nil
}

func (u *unpickler) need(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, fmt.Errorf("%w: truncated (needs %d bytes, %d left)", ErrPickle, n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || u.top() == (mark{}) {
		return nil, fmt.Errorf("%w: stack underflow", ErrPickle)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() any {
	if len(u.stack) == 0 {
		return nil
	}
	return u.stack[len(u.stack)-1]
}

// popMark returns the items above the last MARK and removes them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("%w: no MARK", ErrPickle)
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m+1:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) string(n int) error {
	b, err := u.need(n)
	if err != nil {
		return err
	}
	u.push(string(b))
	return nil
}

func (u *unpickler) length(size int) (int, error) {
	b, err := u.need(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch size {
	case 1:
		n = uint64(b[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > uint64(len(u.data)-u.pos) {
		return 0, fmt.Errorf("%w: truncated (a length of %d bytes, %d left)", ErrPickle, n, len(u.data)-u.pos)
	}
	return int(n), nil
}

func (u *unpickler) run() (any, error) {
	for {
		b, err := u.need(1)
		if err != nil {
			return nil, err
		}
		op := b[0]
		switch op {
		case 0x80: // PROTO
			p, err := u.need(1)
			if err != nil {
				return nil, err
			}
			if p[0] < 2 || p[0] > 5 {
				return nil, fmt.Errorf("%w: pickle protocol %d (2 to 5 are read)", ErrPickle, p[0])
			}
		case 0x95: // FRAME
			if _, err := u.need(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(':
			u.marks = append(u.marks, len(u.stack))
			u.push(mark{})
		case ')':
			u.push(Tuple{})
		case ']':
			u.push(&List{})
		case '}':
			u.push(NewDict())
		case 'N':
			u.push(nil)
		case 0x88:
			u.push(true)
		case 0x89:
			u.push(false)
		case 'K':
			b, err := u.need(1)
			if err != nil {
				return nil, err
			}
			u.push(int64(b[0]))
		case 'M':
			b, err := u.need(2)
			if err != nil {
				return nil, err
			}
			u.push(int64(binary.LittleEndian.Uint16(b)))
		case 'J':
			b, err := u.need(4)
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(binary.LittleEndian.Uint32(b))))
		case 0x8a, 0x8b: // LONG1, LONG4
			size := 1
			if op == 0x8b {
				size = 4
			}
			n, err := u.length(size)
			if err != nil {
				return nil, err
			}
			b, err := u.need(n)
			if err != nil {
				return nil, err
			}
			if n > 8 {
				return nil, fmt.Errorf("%w: an integer of %d bytes (at most 8 are read)", ErrPickle, n)
			}
			var v int64
			for i := n - 1; i >= 0; i-- {
				v = v<<8 | int64(b[i])
			}
			if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend
				v -= int64(1) << (8 * n)
			}
			u.push(v)
		case 'G':
			b, err := u.need(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'X', 0x8c, 0x8d, 'T', 'U', 'B', 'C', 0x8e: // strings and bytes
			size := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8, 'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8}[op]
			n, err := u.length(size)
			if err != nil {
				return nil, err
			}
			if op == 'B' || op == 'C' || op == 0x8e {
				b, _ := u.need(n)
				u.push(append([]byte(nil), b...))
			} else if err := u.string(n); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL "module\nname\n"
			mod, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			if err := u.global(mod, name); err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			n, err := u.pop()
			if err != nil {
				return nil, err
			}
			m, err := u.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := m.(string)
			ns, ok2 := n.(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: STACK_GLOBAL of non-strings", ErrPickle)
			}
			if err := u.global(ms, ns); err != nil {
				return nil, err
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			if u.pers == nil {
				return nil, fmt.Errorf("%w: persistent id outside a torch archive", ErrPickle)
			}
			v, err := u.pers(pid)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'R': // REDUCE
			args, err := u.pop()
			if err != nil {
				return nil, err
			}
			f, err := u.pop()
			if err != nil {
				return nil, err
			}
			g, ok := f.(Global)
			t, ok2 := args.(Tuple)
			if !ok || !ok2 {
				return nil, fmt.Errorf("%w: REDUCE of %T with %T (only allow-listed globals are applied)", ErrPickle, f, args)
			}
			c := u.calls[g]
			if c == nil {
				return nil, fmt.Errorf("%w: %s is not callable here", ErrRefused, g)
			}
			v, err := c(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g, err)
			}
			u.push(v)
		case 'b': // BUILD
			state, err := u.pop()
			if err != nil {
				return nil, err
			}
			switch o := u.top().(type) {
			case *Dict:
				o.State = state
			case *Tensor:
				// torch sets attributes on tensor subclasses this way; a plain
				// tensor has none worth keeping.
			default:
				return nil, fmt.Errorf("%w: BUILD on %T", ErrRefused, o)
			}
		case 't', 0x85, 0x86, 0x87:
			var items []any
			if op == 't' {
				if items, err = u.popMark(); err != nil {
					return nil, err
				}
			} else {
				n := int(op - 0x84)
				if len(u.stack) < n {
					return nil, fmt.Errorf("%w: stack underflow", ErrPickle)
				}
				items = append([]any(nil), u.stack[len(u.stack)-n:]...)
				for _, it := range items {
					if it == (mark{}) {
						return nil, fmt.Errorf("%w: MARK inside TUPLE%d", ErrPickle, n)
					}
				}
				u.stack = u.stack[:len(u.stack)-n]
			}
			u.push(Tuple(items))
		case 'a', 'e':
			var items []any
			if op == 'a' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			l, ok := u.top().(*List)
			if !ok {
				return nil, fmt.Errorf("%w: APPEND to %T", ErrPickle, u.top())
			}
			l.Items = append(l.Items, items...)
		case 's', 'u':
			var items []any
			if op == 's' {
				if len(u.stack) < 3 {
					return nil, fmt.Errorf("%w: stack underflow", ErrPickle)
				}
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				k, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{k, v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			if len(items)%2 != 0 {
				return nil, fmt.Errorf("%w: SETITEMS with an odd number of items", ErrPickle)
			}
			d, ok := u.top().(*Dict)
			if !ok {
				return nil, fmt.Errorf("%w: SETITEM on %T", ErrPickle, u.top())
			}
			for i := 0; i < len(items); i += 2 {
				if err := d.Set(items[i], items[i+1]); err != nil {
					return nil, err
				}
			}
		case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
			var idx uint32
			switch op {
			case 'q':
				b, err := u.need(1)
				if err != nil {
					return nil, err
				}
				idx = uint32(b[0])
			case 'r':
				b, err := u.need(4)
				if err != nil {
					return nil, err
				}
				idx = binary.LittleEndian.Uint32(b)
			default:
				idx = uint32(len(u.memo))
			}
			if len(u.stack) == 0 || u.top() == (mark{}) {
				return nil, fmt.Errorf("%w: memoize with an empty stack", ErrPickle)
			}
			u.memo[idx] = u.top()
		case 'h', 'j': // BINGET, LONG_BINGET
			var idx uint32
			if op == 'h' {
				b, err := u.need(1)
				if err != nil {
					return nil, err
				}
				idx = uint32(b[0])
			} else {
				b, err := u.need(4)
				if err != nil {
					return nil, err
				}
				idx = binary.LittleEndian.Uint32(b)
			}
			v, ok := u.memo[idx]
			if !ok {
				return nil, fmt.Errorf("%w: memo %d was never stored", ErrPickle, idx)
			}
			u.push(v)
		case '0': // POP
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			if len(u.stack) == 0 || u.top() == (mark{}) {
				return nil, fmt.Errorf("%w: DUP of an empty stack", ErrPickle)
			}
			u.push(u.top())
		case 0x81, 0x92, 'i', 'o': // NEWOBJ, NEWOBJ_EX, INST, OBJ
			return nil, fmt.Errorf("%w: opcode 0x%02x builds an arbitrary object", ErrRefused, op)
		case 0x82, 0x83, 0x84: // EXT1, EXT2, EXT4
			return nil, fmt.Errorf("%w: extension-registry opcode 0x%02x", ErrRefused, op)
		default:
			return nil, fmt.Errorf("%w: unsupported opcode 0x%02x", ErrPickle, op)
		}
	}
}

// line reads a newline-terminated ASCII line of at most 256 bytes (GLOBAL's
// operands).
func (u *unpickler) line() (string, error) {
	rest := u.data[u.pos:]
	if len(rest) > 257 {
		rest = rest[:257]
	}
	i := strings.IndexByte(string(rest), '\n')
	if i < 0 {
		return "", fmt.Errorf("%w: GLOBAL operand without a newline within 256 bytes", ErrPickle)
	}
	u.pos += i + 1
	return string(rest[:i]), nil
}

// global pushes an allowed global or refuses it.
func (u *unpickler) global(module, name string) error {
	if !allowedGlobal(module, name) {
		return refusal(module, name)
	}
	u.push(Global{module, name})
	return nil
}
