package certify

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReportTypesSnakeCase: every exported field of every type a report
// can hold (Conditions' values included) has a snake_case JSON name or is
// left out ("-"), so every key at every depth is snake_case whatever the
// run (RUN_FORMAT.md).
func TestReportTypesSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z0-9_]+$`)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Array || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if !snake.MatchString(name) {
				t.Errorf("%s.%s: JSON name %q is not snake_case", path, f.Name, name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Report{}), "report")
	walk(reflect.TypeOf(TheoremReport{}), "report.conditions.theorems")
	walk(reflect.TypeOf(AffineReport{}), "report.conditions.affine_model")
}
