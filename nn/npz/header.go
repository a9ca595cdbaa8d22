package npz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// npyHeader is the content of a .npy header dict.
type npyHeader struct {
	descr   string  // e.g. "<f8"; a non-string descr (structured dtype) is rendered with %v
	fortran bool    // fortran_order
	shape   []int64 // non-negative dimensions; empty for a 0-d array
}

// parseHeader parses the Python dict literal of a .npy header, e.g.
// "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   \n".
// It accepts exactly the keys descr, fortran_order and shape, as numpy does.
func parseHeader(s string) (npyHeader, error) {
	var h npyHeader
	p := &pyParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return h, err
	}
	p.space()
	if p.i != len(p.s) {
		return h, fmt.Errorf("unexpected %q after the dict", clip(p.s[p.i:]))
	}
	d, ok := v.(map[string]any)
	if !ok {
		return h, errors.New("header is not a dict")
	}
	if len(d) != 3 {
		return h, fmt.Errorf("header has keys %v, want descr, fortran_order, shape", keys(d))
	}
	descr, ok1 := d["descr"]
	fo, ok2 := d["fortran_order"].(bool)
	shape, ok3 := d["shape"].([]any)
	if !ok1 || !ok2 || !ok3 {
		return h, errors.New("header needs descr, a bool fortran_order and a tuple shape")
	}
	if s, ok := descr.(string); ok {
		h.descr = s
	} else {
		h.descr = fmt.Sprintf("%v", descr)
	}
	h.fortran = fo
	for _, x := range shape {
		n, ok := x.(int64)
		if !ok || n < 0 || int64(int(n)) != n {
			return h, fmt.Errorf("shape dimension %v is not a non-negative integer", x)
		}
		h.shape = append(h.shape, n)
	}
	return h, nil
}

func keys(d map[string]any) []string {
	var ks []string
	for k := range d {
		ks = append(ks, k)
	}
	return ks
}

// pyParser parses the Python literals numpy writes in headers: dicts with
// string keys, tuples, lists, strings, integers, True, False and None.
type pyParser struct {
	s string
	i int
}

const maxDepth = 32

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		d := map[string]any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return d, nil
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string", k)
			}
			if _, dup := d[ks]; dup {
				return nil, fmt.Errorf("duplicate key %q", ks)
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, errors.New("expected ':'")
			}
			p.i++
			if d[ks], err = p.value(depth + 1); err != nil {
				return nil, err
			}
			if err := p.sep('}'); err != nil {
				return nil, err
			}
		}
	case c == '(' || c == '[':
		end := byte(')')
		if c == '[' {
			end = ']'
		}
		p.i++
		l := []any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return l, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
			if err := p.sep(end); err != nil {
				return nil, err
			}
		}
	case c == '\'' || c == '"':
		j := strings.IndexByte(p.s[p.i+1:], c)
		if j < 0 {
			return nil, errors.New("unterminated string")
		}
		v := p.s[p.i+1 : p.i+1+j]
		if strings.IndexByte(v, '\\') >= 0 {
			return nil, errors.New("escapes in strings are not supported")
		}
		p.i += j + 2
		return v, nil
	case c == '-' || c >= '0' && c <= '9':
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, err
		}
		if j < len(p.s) && p.s[j] == 'L' { // Python 2 long
			j++
		}
		p.i = j
		return n, nil
	}
	for _, w := range []struct {
		word string
		v    any
	}{{"True", true}, {"False", false}, {"None", nil}} {
		if strings.HasPrefix(p.s[p.i:], w.word) {
			p.i += len(w.word)
			return w.v, nil
		}
	}
	return nil, fmt.Errorf("unexpected %q", clip(p.s[p.i:]))
}

// sep consumes a ',' or checks that the closing end follows.
func (p *pyParser) sep(end byte) error {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return nil
	}
	if p.i < len(p.s) && p.s[p.i] == end {
		return nil
	}
	return fmt.Errorf("expected ',' or %q", end)
}
