package sweep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// testSchema mimics certify's configurations: a training configuration
// with float, string, int, bool and duration keys, and an analysis one.
func testSchema() Schema {
	return Schema{
		Train: func() Config { return Struct("certify train", new(testTrain)) },
		Analysis: func() Config {
			return Struct("certify", &testAnalysis{Alphas: 50})
		},
		Reserved: []string{"out", "run"},
	}
}

type testTrain struct {
	LR       float64  `flag:"lr"`
	Optim    string   `flag:"optim"`
	Arch     string   `flag:"arch"`
	Epochs   int      `flag:"epochs"`
	Nesterov bool     `flag:"nesterov"`
	Budget   duration `flag:"budget"`
	Out      string   `flag:"out"`
}

type testAnalysis struct {
	Alphas int    `flag:"alphas"`
	Run    string `flag:"run"`
}

// duration is a key whose type parses itself (as flag.Duration).
type duration struct{ d time.Duration }

func (d *duration) Set(s string) (err error) { d.d, err = time.ParseDuration(s); return err }
func (d *duration) String() string           { return d.d.String() }

func TestParseCrossesAxesInOrder(t *testing.T) {
	g, err := Parse("g.json", []byte(`{
	  "base": {"epochs": 2, "nesterov": true},
	  "axes": {"optim": ["sgd", "adam"], "arch": ["784-10"], "lr": [0.1, 1e-3, 2]},
	  "analysis": {"alphas": 11}
	}`), testSchema())
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 6 {
		t.Fatalf("Len = %d, want 2·1·3 = 6", g.Len())
	}
	// The first axis varies slowest; the single-valued arch is not in names.
	want := []string{
		"optim=sgd_lr=0.1", "optim=sgd_lr=1e-3", "optim=sgd_lr=2",
		"optim=adam_lr=0.1", "optim=adam_lr=1e-3", "optim=adam_lr=2",
	}
	for i, p := range g.Points() {
		if p.Index != i || p.Name != want[i] {
			t.Errorf("point %d: index %d name %q, want %q", i, p.Index, p.Name, want[i])
		}
	}
	p := g.Point(4)
	wantTrain := []Setting{{"epochs", "2"}, {"nesterov", "true"}, {"optim", "adam"}, {"arch", "784-10"}, {"lr", "1e-3"}}
	if !reflect.DeepEqual(p.Train, wantTrain) {
		t.Errorf("point 4 sets %v, want %v", p.Train, wantTrain)
	}
	if !reflect.DeepEqual(g.Analysis, []Setting{{"alphas", "11"}}) {
		t.Errorf("analysis %v", g.Analysis)
	}
	// Every point's settings are accepted by a fresh configuration and give
	// the typed values.
	c := Struct("certify train", new(testTrain))
	for _, s := range p.Train {
		if err := c.Set(s.Flag, s.Value); err != nil {
			t.Fatal(err)
		}
	}
	if lr := c.(structConfig).cfg.(*testTrain).LR; lr != 1e-3 {
		t.Errorf("lr = %v, want 1e-3", lr)
	}
}

func TestParseErrorsNameFileAndField(t *testing.T) {
	for _, c := range []struct {
		name, grid string
		want       []string // substrings of the error
	}{
		{"malformed", `{"axes": {"lr": [0.1,]}}`, []string{"g.json", "malformed JSON", "line 1"}},
		{"malformed line", "{\n \"axes\": {\n  \"lr\": [0.1 0.2]}}", []string{"g.json", "line 3"}},
		{"truncated", `{"axes": {"lr": [0.1`, []string{"g.json", "malformed JSON"}},
		{"not object", `[1, 2]`, []string{"g.json", "must be a JSON object"}},
		{"trailing", `{"axes": {"lr": [1]}} {}`, []string{"g.json", "after the closing"}},
		{"unknown key", `{"axis": {"lr": [1]}}`, []string{"g.json", "axis", "unknown key"}},
		{"no axes", `{"base": {"lr": 1}}`, []string{"g.json", `no "axes"`}},
		{"unknown axis", `{"axes": {"lrr": [1]}}`, []string{"g.json", "axes.lrr", `unknown flag "lrr"`, "lr, nesterov"}},
		{"unknown base", `{"base": {"epoch": 1}, "axes": {"lr": [1]}}`, []string{"base.epoch", "unknown flag"}},
		{"unknown analysis", `{"axes": {"lr": [1]}, "analysis": {"alpha": 3}}`, []string{"analysis.alpha", "unknown flag"}},
		{"reserved", `{"axes": {"out": ["a", "b"]}}`, []string{"axes.out", "set by the sweep"}},
		{"reserved analysis", `{"axes": {"lr": [1]}, "analysis": {"run": "x"}}`, []string{"analysis.run", "set by the sweep"}},
		{"empty axis", `{"axes": {"lr": []}}`, []string{"axes.lr", "empty axis"}},
		{"axis not list", `{"axes": {"lr": 0.1}}`, []string{"axes.lr", "want a list", "a number"}},
		{"string for number", `{"axes": {"lr": ["fast"]}}`, []string{"axes.lr[0]", "takes a number", `"fast"`}},
		{"number for string", `{"axes": {"optim": [1]}}`, []string{"axes.optim[0]", "takes a string"}},
		{"bool for int", `{"axes": {"epochs": [true]}}`, []string{"axes.epochs[0]", "takes a number"}},
		{"float for int", `{"axes": {"epochs": [1.5]}}`, []string{"axes.epochs[0]", "--epochs 1.5"}},
		{"null", `{"axes": {"lr": [null]}}`, []string{"axes.lr[0]", "null"}},
		{"nested", `{"axes": {"lr": [[1]]}}`, []string{"axes.lr[0]", "a list"}},
		{"bad duration", `{"axes": {"budget": ["soon"]}}`, []string{"axes.budget[0]", "--budget"}},
		{"duplicate value", `{"axes": {"lr": [0.1, 0.2, 0.1]}}`, []string{"axes.lr[2]", "duplicate value", "axes.lr[0]"}},
		{"duplicate value spelled differently", `{"axes": {"lr": [0.1, 1e-1]}}`, []string{"axes.lr[1]", "duplicate value 1e-1", "axes.lr[0]"}},
		{"duplicate number spelled differently", `{"axes": {"lr": [2, 2.0, 20e-1]}}`, []string{"axes.lr[1]", "duplicate value 2.0"}},
		{"duplicate key", `{"axes": {"lr": [1], "lr": [2]}}`, []string{"axes.lr", "duplicate key"}},
		{"duplicate top key", `{"axes": {"lr": [1]}, "axes": {"lr": [2]}}`, []string{"axes", "duplicate key"}},
		{"base and axis", `{"base": {"lr": 1}, "axes": {"lr": [1, 2]}}`, []string{"axes.lr", "also set in base"}},
		{"name collision", `{"axes": {"arch": ["a/b", "a:b"]}}`, []string{"axes", "points 0 and 1", `"arch=a-b"`}},
		{"description type", `{"description": 3, "axes": {"lr": [1]}}`, []string{"description", "want a string"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("g.json", []byte(c.grid), testSchema())
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"), testSchema())
	if err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestNameAndSanitize(t *testing.T) {
	for _, c := range []struct {
		vary []Setting
		want string
	}{
		{nil, "base"},
		{[]Setting{{"lr", "0.1"}, {"optim", "adam"}, {"arch", "784-64-10"}}, "lr=0.1_optim=adam_arch=784-64-10"},
		{[]Setting{{"data-dir", "/data/my mnist"}}, "data-dir=-data-my-mnist"},
		{[]Setting{{"act", "leaky_relu"}, {"init-scale", "1e+2"}}, "act=leaky_relu_init-scale=1e+2"},
	} {
		if got := Name(c.vary); got != c.want {
			t.Errorf("Name(%v) = %q, want %q", c.vary, got, c.want)
		}
	}
	if got := Sanitize(".hidden/é"); got != "-hidden---" {
		t.Errorf("Sanitize = %q (é is two bytes)", got)
	}
	long := Name([]Setting{{"arch", strings.Repeat("784-", 100) + "10"}})
	long2 := Name([]Setting{{"arch", strings.Repeat("784-", 100) + "11"}})
	if len(long) != 200 || long == long2 {
		t.Errorf("long names: %d bytes, distinct %v", len(long), long != long2)
	}
}

// Names are file names: never empty, no separators, not hidden, at most 200 bytes.
func TestNameIsFileNameProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 4).Draw(t, "n")
		var vary []Setting
		for i := 0; i < n; i++ {
			vary = append(vary, Setting{rapid.StringMatching(`[a-z][a-z-]{0,8}`).Draw(t, "flag"), rapid.String().Draw(t, "value")})
		}
		name := Name(vary)
		if name == "" || len(name) > 200 || strings.ContainsAny(name, "/\x00") || name[0] == '.' {
			t.Fatalf("Name(%q) = %q", vary, name)
		}
		if Sanitize(name) != name {
			t.Fatalf("Name is not a fixed point of Sanitize: %q", name)
		}
	})
}

func TestMatcher(t *testing.T) {
	names := []string{"lr=0.1_optim=sgd", "lr=0.1_optim=adam", "lr=0.01_optim=adam"}
	for _, c := range []struct {
		pats []string
		want []bool
	}{
		{nil, []bool{true, true, true}},
		{[]string{"*adam"}, []bool{false, true, true}},
		{[]string{"lr=0.1_*"}, []bool{true, true, false}},
		{[]string{"adam"}, []bool{false, false, false}}, // globs match whole names
		{[]string{"re:adam"}, []bool{false, true, true}},
		{[]string{"re:^lr=0\\.1_"}, []bool{true, true, false}},
		{[]string{"*sgd", "re:0\\.01"}, []bool{true, false, true}},
	} {
		m, err := NewMatcher(c.pats)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			if m.Match(n) != c.want[i] {
				t.Errorf("%q matches %q: %v, want %v", c.pats, n, m.Match(n), c.want[i])
			}
		}
	}
	for _, bad := range []string{"[a-", "re:("} {
		if _, err := NewMatcher([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("pattern %q: error %v", bad, err)
		}
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	items := make([]int, 40)
	for i := range items {
		items[i] = i
	}
	var cur, peak, sum atomic.Int64
	errs := Run(context.Background(), items, 3, func(_ context.Context, i int) error {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		sum.Add(int64(i))
		cur.Add(-1)
		if i == 7 {
			return fmt.Errorf("seven")
		}
		return nil
	})
	if peak.Load() > 3 || peak.Load() < 2 {
		t.Errorf("peak concurrency %d with 3 jobs", peak.Load())
	}
	if sum.Load() != 40*39/2 {
		t.Errorf("sum of items run %d, want %d", sum.Load(), 40*39/2)
	}
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("item %d: error %v", i, err)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	items := make([]int, 100)
	var ran atomic.Int64
	errs := Run(ctx, items, 2, func(ctx context.Context, _ int) error {
		if ran.Add(1) == 5 {
			cancel()
		}
		return nil
	})
	if n := ran.Load(); n < 5 || n > 7 {
		t.Errorf("%d items ran after cancelling at the 5th with 2 jobs", n)
	}
	canceled := 0
	for _, err := range errs {
		if errors.Is(err, context.Canceled) {
			canceled++
		}
	}
	if canceled+int(ran.Load()) != 100 {
		t.Errorf("%d cancelled + %d ran ≠ 100", canceled, ran.Load())
	}
}

func TestArraySpec(t *testing.T) {
	for _, c := range []struct {
		idx   []int
		limit int
		want  string
	}{
		{[]int{0, 1, 2, 3}, 0, "0-3"},
		{[]int{0, 1, 2, 3, 7, 9, 10}, 2, "0-3,7,9-10%2"},
		{[]int{5}, 1, "5%1"},
		{[]int{1, 3, 5}, 0, "1,3,5"},
	} {
		if got := ArraySpec(c.idx, c.limit); got != c.want {
			t.Errorf("ArraySpec(%v, %d) = %q, want %q", c.idx, c.limit, got, c.want)
		}
	}
}

func TestSlurmScript(t *testing.T) {
	s := Slurm{Certify: "/opt/bin/certify", Grid: "/home/me/my grid.json", Out: "/scratch/runs", GridSHA256: "abc",
		JobName: "certify-mnist12", Indices: []int{0, 1, 2, 3}, Limit: 2, Options: []string{"--time=01:00:00", "--mem=4G"}}
	sc, err := s.Script()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --array=0-3%2\n",
		"#SBATCH --output=/scratch/runs/logs/%A_%a.log\n",
		"#SBATCH --time=01:00:00\n#SBATCH --mem=4G\n",
		"exec /opt/bin/certify sweep '/home/me/my grid.json' --out /scratch/runs --index \"$SLURM_ARRAY_TASK_ID\" --grid-sha256 abc\n",
	} {
		if !strings.Contains(sc, want) {
			t.Errorf("script lacks %q:\n%s", want, sc)
		}
	}
	// #SBATCH lines must all precede the first command.
	lines := strings.Split(sc, "\n")
	cmd := false
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "#") {
			cmd = true
		} else if cmd && strings.HasPrefix(l, "#SBATCH") {
			t.Errorf("#SBATCH after a command: %q", l)
		}
	}
	for _, bad := range []Slurm{
		{Certify: "certify", Grid: "/g", Out: "/o", Indices: []int{0}},
		{Certify: "/c", Grid: "/g", Out: "/o o", Indices: []int{0}},
		{Certify: "/c", Grid: "/g", Out: "/o"},
		{Certify: "/c", Grid: "/g", Out: "/o", Indices: []int{0}, Options: []string{"time=1"}},
		{Certify: "/c", Grid: "/g", Out: "/o", Indices: []int{0}, Options: []string{"--array=0-9"}},
	} {
		if _, err := bad.Script(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestQuoteRoundTripsThroughShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	for _, s := range []string{"plain", "with space", "it's", `a"b\c$d`, ""} {
		out, err := execSh(t, "printf %s "+quote(s))
		if err != nil || out != s {
			t.Errorf("quote(%q) came back as %q (%v)", s, out, err)
		}
	}
}

func TestStoreIndexAndLocks(t *testing.T) {
	g, err := Parse("g.json", []byte(`{"axes": {"lr": [1, 2, 3, 4]}}`), testSchema())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	st, err := NewStore(out, g, true)
	if err != nil {
		t.Fatal(err)
	}
	pts := g.Points()
	// 0 done, 1 trained, 2 partial, 3 failed.
	os.MkdirAll(st.Final(pts[0]), 0o755)
	os.WriteFile(filepath.Join(st.Final(pts[0]), "certificate.json"), []byte("{}"), 0o644)
	d := 0.25
	WriteRecord(st.Final(pts[0]), &Record{Verdict: "non_monotone", Delta: &d, TrainSeconds: 1, AnalysisSeconds: 2})
	os.MkdirAll(st.Stage(pts[1]), 0o755)
	os.MkdirAll(st.Stage(pts[2])+".partial", 0o755)
	os.WriteFile(st.ErrorFile(pts[3]), []byte("boom\n"), 0o644)
	idx, err := st.WriteIndex(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadIndex(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Counts, idx.Counts) {
		t.Errorf("read back counts %v, wrote %v", got.Counts, idx.Counts)
	}
	want := []string{StatusDone, StatusTrained, StatusPartial, StatusFailed}
	for i, e := range got.Points {
		if e.Status != want[i] {
			t.Errorf("point %d: status %s, want %s", i, e.Status, want[i])
		}
	}
	if e := got.Points[0]; e.Verdict != "non_monotone" || *e.Delta != 0.25 || e.Seconds != 3 {
		t.Errorf("done entry %+v", e)
	}
	if got.Points[3].Error != "boom" {
		t.Errorf("failed entry error %q", got.Points[3].Error)
	}
	unlock, err := st.LockPoint(pts[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LockPoint(pts[1]); !errors.Is(err, ErrBusy) {
		t.Errorf("second lock: %v, want ErrBusy", err)
	}
	unlock()
	unlock2, err := st.LockPoint(pts[1])
	if err != nil {
		t.Errorf("lock after unlock: %v", err)
	} else {
		unlock2()
	}
}

func TestRecordSameSettings(t *testing.T) {
	g, _ := Parse("g.json", []byte(`{"base": {"epochs": 2}, "axes": {"lr": [1, 2]}, "analysis": {"alphas": 11}}`), testSchema())
	p := g.Point(1)
	r := &Record{Train: p.Train, Analysis: g.Analysis}
	if ok, d := r.SameSettings(g, p); !ok {
		t.Errorf("same settings differ: %s", d)
	}
	r.Train = []Setting{{"epochs", "3"}, {"lr", "2"}}
	if ok, d := r.SameSettings(g, p); ok || !strings.Contains(d, "--epochs 3 (now 2)") {
		t.Errorf("changed epochs: %v %q", ok, d)
	}
	r = &Record{Train: p.Train}
	if ok, d := r.SameSettings(g, p); ok || !strings.Contains(d, "--alphas unset (now 11)") {
		t.Errorf("added analysis flag: %v %q", ok, d)
	}
}
