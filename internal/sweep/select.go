package sweep

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Matcher selects grid points by name (certify sweep --only).
type Matcher struct {
	globs []string
	res   []*regexp.Regexp
}

// NewMatcher compiles patterns. A pattern starting with "re:" is a Go regular
// expression (RE2 syntax) matched anywhere in the name, so anchor it with ^
// and $ for a whole-name match; any other pattern is a shell glob
// (path.Match: *, ?, [...]) that must match the whole name. A name is
// selected when any pattern matches it; no patterns select every name. It
// returns an error naming a malformed pattern.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range patterns {
		if expr, ok := strings.CutPrefix(p, "re:"); ok {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("--only %q: %v", p, err)
			}
			m.res = append(m.res, re)
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("--only %q: malformed glob: %v", p, err)
		}
		m.globs = append(m.globs, p)
	}
	return m, nil
}

// Match reports whether name is selected.
func (m *Matcher) Match(name string) bool {
	if m == nil || len(m.globs)+len(m.res) == 0 {
		return true
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	for _, re := range m.res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// Select returns the points whose names m selects, in index order.
func Select(pts []Point, m *Matcher) []Point {
	var out []Point
	for _, p := range pts {
		if m.Match(p.Name) {
			out = append(out, p)
		}
	}
	return out
}
