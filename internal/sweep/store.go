package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certify-mli/certify/internal/atomicfile"
)

// Layout of a sweep's output directory OUT:
//
//	OUT/sweep.json             the index (Index), rewritten after every point
//	OUT/NAME/                  a finished point: a complete run directory
//	                           (RUN_FORMAT.md) with certificate.json and RecordFile
//	OUT/.work/NAME.partial/    training in progress (certify train's OUT.partial)
//	OUT/.work/NAME/            trained, being analysed
//	OUT/.work/NAME.error       why the point's last attempt failed
//	OUT/.work/NAME.lock        held (flock) while a process works on the point
//	OUT/.work/sweep.lock       held while the index is rewritten
//	OUT/logs/                  SLURM per-task logs
//
// A point's directory moves to OUT/NAME by one rename once its certificate is
// written, so OUT/NAME is complete or absent.
const (
	IndexFile  = "sweep.json"
	RecordFile = "sweep-point.json"
	WorkDir    = ".work"
	LogDir     = "logs"
)

// Status of a point in the index.
const (
	StatusDone    = "done"    // OUT/NAME holds the run and its certificate
	StatusTrained = "trained" // trained, not analysed yet
	StatusPartial = "partial" // training was interrupted; a rerun resumes or restarts it
	StatusFailed  = "failed"  // the last attempt failed (Entry.Error says why)
	StatusRunning = "running" // a worker of this process is on it
	StatusPending = "pending" // not started
)

// Record is a point's RecordFile, saved in its run directory next to the
// run's config.json: which grid point it is and exactly how it was made.
type Record struct {
	Grid       string `json:"grid"`
	GridSHA256 string `json:"grid_sha256"`
	Index      int    `json:"index"`
	Name       string `json:"name"`
	// Train and Analysis are the settings the grid gave the point, in the
	// order they were applied to fresh flag sets.
	Train    []Setting `json:"train"`
	Analysis []Setting `json:"analysis"`
	// TrainFlags and AnalysisFlags hold the value of every flag after the
	// settings (defaults included), except those the sweep sets itself.
	TrainFlags    map[string]string `json:"train_flags"`
	AnalysisFlags map[string]string `json:"analysis_flags"`
	// TrainedAt is when training of this run finished; Resumed says it
	// continued from the checkpoint of an interrupted attempt.
	TrainedAt       time.Time `json:"trained_at"`
	Resumed         bool      `json:"resumed,omitempty"`
	TrainSeconds    float64   `json:"train_seconds"`
	AnalysisSeconds float64   `json:"analysis_seconds"`
	// Verdict, Delta and DeltaContinuous are copied from certificate.json.
	Verdict         string   `json:"verdict,omitempty"`
	Delta           *float64 `json:"delta,omitempty"`
	DeltaContinuous *float64 `json:"delta_continuous,omitempty"`
	// Host and SlurmJob say where the point ran (SlurmJob "JOB_TASK" when
	// it ran as a SLURM array task).
	Host     string `json:"host,omitempty"`
	SlurmJob string `json:"slurm_job,omitempty"`
}

// SameSettings reports whether r was made with the settings of p and the
// grid's analysis settings, and if not, what differs.
func (r *Record) SameSettings(g *Grid, p Point) (bool, string) {
	if d := diff(r.Train, p.Train); d != "" {
		return false, "train " + d
	}
	if d := diff(r.Analysis, g.Analysis); d != "" {
		return false, "analysis " + d
	}
	return true, ""
}

func diff(a, b []Setting) string {
	am, bm := map[string]string{}, map[string]string{}
	for _, s := range a {
		am[s.Flag] = s.Value
	}
	for _, s := range b {
		bm[s.Flag] = s.Value
	}
	var d []string
	for k, v := range am {
		if w, ok := bm[k]; !ok {
			d = append(d, fmt.Sprintf("--%s %s (now unset)", k, v))
		} else if w != v {
			d = append(d, fmt.Sprintf("--%s %s (now %s)", k, v, w))
		}
	}
	for k, w := range bm {
		if _, ok := am[k]; !ok {
			d = append(d, fmt.Sprintf("--%s unset (now %s)", k, w))
		}
	}
	return strings.Join(d, ", ")
}

// ReadRecord reads dir's RecordFile.
func ReadRecord(dir string) (*Record, error) {
	path := filepath.Join(dir, RecordFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &r, nil
}

// WriteRecord writes r as dir's RecordFile, atomically.
func WriteRecord(dir string, r *Record) error {
	return writeJSON(filepath.Join(dir, RecordFile), r)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// Index is OUT/sweep.json: every point's status and result.
type Index struct {
	Grid       string         `json:"grid"`
	GridSHA256 string         `json:"grid_sha256"`
	Out        string         `json:"out"`
	Updated    time.Time      `json:"updated"`
	Counts     map[string]int `json:"counts"`
	// LastInvocation counts what the latest local-pool invocation did
	// (absent after a SLURM task rewrote the index).
	LastInvocation *Invocation `json:"last_invocation,omitempty"`
	Points         []Entry     `json:"points"`
}

// Invocation counts what one `certify sweep` invocation did.
type Invocation struct {
	Started  time.Time `json:"started"`
	Selected int       `json:"selected"` // points --only selected
	Skipped  int       `json:"skipped"`  // already done
	Trained  int       `json:"trained"`  // trained (from scratch or resumed)
	Resumed  int       `json:"resumed"`  // of which resumed from a checkpoint
	Analysed int       `json:"analysed"` // certified
	Failed   int       `json:"failed"`
	Busy     int       `json:"busy"` // locked by another process
	Seconds  float64   `json:"seconds"`
}

// Entry is one point of the Index. Seconds is training plus analysis.
type Entry struct {
	Index           int               `json:"index"`
	Name            string            `json:"name"`
	Vary            map[string]string `json:"vary"`
	Status          string            `json:"status"`
	Verdict         string            `json:"verdict,omitempty"`
	Delta           *float64          `json:"delta,omitempty"`
	DeltaContinuous *float64          `json:"delta_continuous,omitempty"`
	Seconds         float64           `json:"seconds,omitempty"`
	TrainSeconds    float64           `json:"train_seconds,omitempty"`
	AnalysisSeconds float64           `json:"analysis_seconds,omitempty"`
	TrainedAt       *time.Time        `json:"trained_at,omitempty"`
	Resumed         bool              `json:"resumed,omitempty"`
	Error           string            `json:"error,omitempty"`
}

// Store is a sweep's output directory (the layout above) for one grid.
// Its methods are safe for concurrent use.
type Store struct {
	Out  string
	Grid *Grid

	mu      sync.Mutex
	running map[int]bool
	done    map[int]Entry // finished points never change: cached
}

// NewStore returns the store of g in out; with create it makes OUT and
// OUT/.work (a dry run reads without creating anything).
func NewStore(out string, g *Grid, create bool) (*Store, error) {
	if create {
		if err := os.MkdirAll(filepath.Join(out, WorkDir), 0o755); err != nil {
			return nil, err
		}
	}
	return &Store{Out: out, Grid: g, running: map[int]bool{}, done: map[int]Entry{}}, nil
}

// Final is the run directory of a finished point.
func (s *Store) Final(p Point) string { return filepath.Join(s.Out, p.Name) }

// Stage is where the point is trained and analysed; `certify train` writes
// Stage+".partial" and renames it to Stage.
func (s *Store) Stage(p Point) string { return filepath.Join(s.Out, WorkDir, p.Name) }

// ErrorFile holds the error of the point's last failed attempt.
func (s *Store) ErrorFile(p Point) string { return filepath.Join(s.Out, WorkDir, p.Name+".error") }

// SetRunning marks p as worked on by this process (for the index).
func (s *Store) SetRunning(p Point, on bool) {
	s.mu.Lock()
	s.running[p.Index] = on
	s.mu.Unlock()
}

// Done reports whether p has finished: OUT/NAME exists with certificate.json.
func (s *Store) Done(p Point) bool {
	_, err := os.Stat(filepath.Join(s.Final(p), "certificate.json"))
	return err == nil
}

// Entry reads p's status from the directory.
func (s *Store) Entry(p Point) Entry {
	s.mu.Lock()
	e, ok := s.done[p.Index]
	running := s.running[p.Index]
	s.mu.Unlock()
	if ok {
		return e
	}
	e = Entry{Index: p.Index, Name: p.Name, Vary: map[string]string{}, Status: StatusPending}
	for _, v := range p.Vary {
		e.Vary[v.Flag] = v.Value
	}
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	switch {
	case s.Done(p):
		e.Status = StatusDone
		if r, err := ReadRecord(s.Final(p)); err == nil {
			e.Verdict, e.Delta, e.DeltaContinuous = r.Verdict, r.Delta, r.DeltaContinuous
			e.TrainSeconds, e.AnalysisSeconds = r.TrainSeconds, r.AnalysisSeconds
			e.Seconds = r.TrainSeconds + r.AnalysisSeconds
			t := r.TrainedAt
			e.TrainedAt, e.Resumed = &t, r.Resumed
		} else {
			e.Error = err.Error()
		}
		s.mu.Lock()
		s.done[p.Index] = e
		s.mu.Unlock()
		return e
	case running:
		e.Status = StatusRunning
	case exists(s.ErrorFile(p)):
		e.Status = StatusFailed
		b, _ := os.ReadFile(s.ErrorFile(p))
		e.Error = strings.TrimSpace(string(b))
	case exists(s.Stage(p)):
		e.Status = StatusTrained
	case exists(s.Stage(p) + ".partial"):
		e.Status = StatusPartial
	}
	return e
}

// WriteIndex rewrites OUT/sweep.json from the directory, holding
// OUT/.work/sweep.lock so that concurrent writers (SLURM tasks) do not lose
// each other's points. inv, when not nil, is recorded as LastInvocation.
func (s *Store) WriteIndex(inv *Invocation) (*Index, error) {
	unlock, err := lockFile(filepath.Join(s.Out, WorkDir, "sweep.lock"), true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx := &Index{Grid: s.Grid.File, GridSHA256: s.Grid.SHA256, Out: s.Out, Updated: time.Now().UTC(), Counts: map[string]int{}, LastInvocation: inv}
	for _, p := range s.Grid.Points() {
		e := s.Entry(p)
		idx.Counts[e.Status]++
		idx.Points = append(idx.Points, e)
	}
	return idx, writeJSON(filepath.Join(s.Out, IndexFile), idx)
}

// ReadIndex reads an index file.
func ReadIndex(path string) (*Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &idx, nil
}

// ErrBusy is returned by LockPoint when another process holds the point.
var ErrBusy = errors.New("another process is working on this point")

// LockPoint takes OUT/.work/NAME.lock without waiting; it returns ErrBusy
// when another process (a SLURM task, a second local sweep) holds it. The
// lock is released by unlock or when the process dies.
func (s *Store) LockPoint(p Point) (unlock func(), err error) {
	return lockFile(filepath.Join(s.Out, WorkDir, p.Name+".lock"), false)
}

func lockFile(path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
