package certify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// A checkpointed branch and bound (issue 13, the developers' guide's "long
// work can be interrupted and resumed"). While BranchAndBound runs it saves
// the state at the start of a round (every leaf, evaluated, with the kept
// rows of the settled-example drop-out; the interval path's counters and
// search switches; the accuracy tap's verdicts; the objective's own state,
// ObjectiveState) to a file, atomically, at most every Checkpoint.Every of
// wall time, when the search is cancelled (before BranchAndBound returns
// ctx.Err()) and when it ends (so that a later phase's interruption does not
// cost this one again). A run started with the same Checkpoint.File and key
// resumes from that state: it encloses L(0) and L(1) and calls the
// objective's Begin again (deterministic: the same enclosures and notes),
// restores the state, and continues with the round's Bound. Every quantity a
// later round reads is restored bit for bit (float64s as their bits, gob),
// so the leaves, bounds, verdict and counters are those of an uninterrupted
// run (TestCheckpointResumeBitIdentical).
//
// The file: the line "certify-checkpoint 1", a JSON header line
// (checkpointHeader: stage, key, saved time, leaves, the payload's length
// and SHA-256), then the payload (gob, checkpointPayload).

// DefaultCheckpointEvery is the least wall time between two saves of a
// running branch and bound's state (Checkpoint.Every's default).
const DefaultCheckpointEvery = 60 * time.Second

// checkpointMagic is the first line of a checkpoint file.
// Format 2 added the fresh leaves evaluated within a round
// (checkpointPayload.Partial); a file of format 1 is refused by name.
const checkpointMagic = "certify-checkpoint 2"

// Checkpoint says where BranchAndBound saves its state and under which
// identity (CertifyOptions.Checkpoint; Options.Checkpoint for Analyze, which
// names the files of its two searches in Dir).
type Checkpoint struct {
	// Dir holds Analyze's checkpoints: CertificateCheckpoint and
	// AccuracyCheckpoint (Options.Checkpoint).
	Dir string
	// File is the checkpoint of one search (CertifyOptions.Checkpoint).
	File string
	// Key identifies the inputs and settings the state belongs to: the
	// caller's digest of the files read, the line, the options and the
	// binary (hex). A file saved under another key is never resumed from.
	Key string
	// KeyParts, when set, are the digests Key was made from, by name (e.g.
	// "program", "data.safetensors", "options"); they are saved in the
	// file so that a mismatch can say which part differs.
	KeyParts map[string]string
	// Every is the least wall time between two saves (0: DefaultCheckpointEvery).
	Every time.Duration
	// Fresh ignores an existing checkpoint (it is replaced at the first save).
	Fresh bool
	// Notify, if not nil, is told what happened to a checkpoint in one line
	// (resumed from, ignored and why); the caller prints it on stderr.
	Notify func(msg string)

	// resumable is set once a search of this checkpoint saved its state
	// or resumed from a file under its key (shared by the searches'
	// copies, stageFile): Resumable.
	resumable *bool
	// began is when this process's search started (BranchAndBound);
	// prior is the search's wall seconds in earlier processes, read from
	// the file it resumed from (0 when it did not resume): a save records
	// prior + the time since began (checkpointHeader.Seconds).
	began time.Time
	prior float64
}

// PriorSeconds returns the wall seconds the last search run with c spent in
// earlier processes, read from the checkpoint file it resumed from: 0 when
// c is nil or the search did not resume. A search's reported seconds
// (Certificate.Seconds, AccuracyBounds.Seconds) include them, so that a
// resumed search reports the time of the whole search, as its leaves and
// evaluations do.
func (c *Checkpoint) PriorSeconds() float64 {
	if c == nil {
		return 0
	}
	return c.prior
}

// Resumable reports whether a search of c saved its state, or resumed
// from a file saved under its key, in this process: the same command then
// resumes from c's files. A file left by another run under another key
// does not count (it is not used).
func (c *Checkpoint) Resumable() bool {
	return c != nil && c.resumable != nil && *c.resumable
}

// Analyze's checkpoint files in Checkpoint.Dir.
const (
	CertificateCheckpoint = "certificate.ckpt"
	AccuracyCheckpoint    = "accuracy.ckpt"
)

// stageFile returns the checkpoint of the search named by file in c.Dir,
// with the stage's options digested into its key; nil when c is nil.
func (c *Checkpoint) stageFile(file string, opts any) *Checkpoint {
	if c == nil || c.Dir == "" {
		return nil
	}
	if c.resumable == nil {
		c.resumable = new(bool)
	}
	s := *c
	s.File = filepath.Join(c.Dir, file)
	b, err := json.Marshal(opts)
	if err != nil { // never for the option structs passed: a key that matches nothing
		b = []byte(err.Error() + time.Now().String())
	}
	h := sha256.Sum256(append([]byte(c.Key+"\x00"+file+"\x00"), b...))
	s.Key = hex.EncodeToString(h[:])
	s.KeyParts = map[string]string{}
	for k, v := range c.KeyParts {
		s.KeyParts[k] = v
	}
	o := sha256.Sum256(b)
	s.KeyParts["search options"] = hex.EncodeToString(o[:])
	return &s
}

// certifyOptions are the certificate's options in Analyze, but for the
// callbacks and the checkpoint (attachCertificate).
func (o Options) certifyOptions() CertifyOptions {
	return CertifyOptions{Tolerance: o.Tolerance, MaxIntervals: o.MaxIntervals, MinWidth: o.MinWidth, DeltaTol: o.deltaTol()}
}

// accuracyOptions are the accuracy bounds' options in Analyze, but for the
// callbacks and the checkpoint (attachAccuracy).
func (o Options) accuracyOptions() AccuracyOptions {
	return AccuracyOptions{MaxIntervals: o.AccuracyIntervals}
}

// searchCheckpoints returns the checkpoints of Analyze's two searches in
// o.Checkpoint.Dir, each under a key with its options digested (nil, nil
// without one): the certificate's (CertificateCheckpoint) and the accuracy
// bounds' (AccuracyCheckpoint). Analyze runs both with the certificate's
// passes classifying examples for the accuracy bounds (accTap), which
// changes the searches' state, so the key says so. attachCertificate,
// attachAccuracy and Verify all take the keys from here.
func (o Options) searchCheckpoints() (cert, acc *Checkpoint) {
	const tap = true
	return o.Checkpoint.stageFile(CertificateCheckpoint, o.certifyOptions().keyed(tap)),
		o.Checkpoint.stageFile(AccuracyCheckpoint, o.accuracyOptions().keyed(tap))
}

// keyed is what of o changes the accuracy search's leaves, bounds or
// result, for a checkpoint's key (CertifyOptions.keyed): not Workers,
// Progress or Checkpoint. tap says the certificate's passes classify
// examples for it (accTap).
func (o AccuracyOptions) keyed(tap bool) any {
	return struct {
		MaxIntervals, InitialIntervals int
		MinWidth, Tol                  float64
		Tap                            bool
	}{o.MaxIntervals, o.InitialIntervals, o.MinWidth, o.Tol, tap}
}

// RemoveCheckpoints removes Analyze's checkpoint files in dir and dir
// itself when it is then empty: the caller does so once the report is
// written.
func RemoveCheckpoints(dir string) error {
	for _, f := range []string{CertificateCheckpoint, AccuracyCheckpoint} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	os.Remove(dir) // only when empty
	return nil
}

func (c *Checkpoint) every() time.Duration {
	if c.Every <= 0 {
		return DefaultCheckpointEvery
	}
	return c.Every
}

func (c *Checkpoint) notify(format string, args ...any) {
	if c.Notify != nil {
		c.Notify(fmt.Sprintf(format, args...))
	}
}

// CheckpointError is a checkpoint file that cannot be trusted: unreadable,
// truncated, not a checkpoint, or its payload's checksum or encoding wrong.
// The command exits with status 2 on it.
type CheckpointError struct {
	File string
	Err  error
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("checkpoint %s: %v; remove it or run again with --fresh to start the search over", e.File, e.Err)
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// ObjectiveState is what an Objective keeps between the rounds of a branch
// and bound, for checkpoints: SaveState captures it at the start of a round
// (before Bound; cheaply: the capture may be encoded later, after the round
// has moved on, so it must not share what later rounds change) and returns
// a function that gob-encodes the capture; RestoreState, called after Begin
// on a resumed search, decodes it. Leaves are referred to by their index
// in the round's leaves (in order of α).
type ObjectiveState interface {
	SaveState(leaves []*Leaf) func(*gob.Encoder) error
	RestoreState(leaves []*Leaf, dec *gob.Decoder) error
}

// checkpointHeader is the JSON line after the magic line.
type checkpointHeader struct {
	Stage  string `json:"stage"`
	Key    string `json:"key"`
	Saved  string `json:"saved"`
	Leaves int    `json:"leaves"`
	// Evaluated is the number of the round's fresh leaves saved evaluated
	// (checkpointPayload.Partial)
	Evaluated int `json:"fresh_evaluated,omitempty"`
	// Seconds is the search's wall time up to the save, in seconds, summed
	// over the processes that worked on it (absent in files saved before
	// it was recorded: read as 0)
	Seconds       float64 `json:"seconds,omitempty"`
	PayloadBytes  int     `json:"payload_bytes"`
	PayloadSHA256 string  `json:"payload_sha256"`
	// KeyParts are Checkpoint.KeyParts (informative: Key decides)
	KeyParts map[string]string `json:"key_parts,omitempty"`
}

// resumedCount is the progress in leaves of the search saved with header h
// (0 for none), as BranchAndBound reports it within a round: the round's
// leaves and half its evaluated fresh leaves (a split leaf counts as its two
// children), or the initial leaves evaluated.
func (h *checkpointHeader) resumedCount() int {
	switch {
	case h == nil:
		return 0
	case h.Leaves == 0:
		return h.Evaluated
	}
	return h.Leaves + h.Evaluated/2
}

// checkpointPayload is the gob payload's first value; the objective's
// state follows it.
type checkpointPayload struct {
	Leaves []ckptLeaf
	IP     ckptPath
	Tap    *ckptTap
	// Partial, when not nil, is the progress within the round that starts
	// from Leaves: its first fresh leaves, evaluated.
	Partial *ckptPartial
}

// ckptPartial is the progress of a round's evaluation: the first
// len(Fresh) of the leaves its Split made (in order of α), evaluated, and
// the interval path's counters and the tap's verdicts after them (with the
// round's split parents' kept rows released).
type ckptPartial struct {
	Fresh []ckptLeaf
	IP    ckptPath
	Tap   *ckptTap
}

// ckptLeaf is a Leaf: its exported fields (gob encodes them all, with
// float64s as their bits) and its kept rows.
type ckptLeaf struct {
	L    Leaf
	Kept *ckptKept
}

type ckptKept struct {
	Chunks   []ckptChunkKeep
	Examples int
}

type ckptChunkKeep struct {
	Present    bool
	Rows       []int32
	DL, D2L, L []interval.I
	Kink       []bool
	DLC        []interval.I
	// LC, DLCM, Mid: ℓ_i and ℓ_i′ at the keeping leaf's midpoint (keptAtMid)
	LC, DLCM []interval.I
	Mid      float64
}

// ckptPath is the interval path's state a round changes: its counters
// (reported as evaluations and in the diagnostics) and search switches.
type ckptPath struct {
	Evals, KeptTotal, KeptRefused, RowsReused, DeadRowN, ProbeSettled, PatternRows int
	CarryRows, CarryDerived, CarryUnits                                            int
	KeepKinked, DropSettled, Probe                                                 bool
}

type ckptTap struct {
	Rows   int
	Leaves []ckptTapLeaf
}

type ckptTapLeaf struct {
	A, B   float64
	Chunks []ckptTapChunk
}

type ckptTapChunk struct {
	Present bool
	V       []int8
}

// roundState is the state at the start of a round, captured cheaply
// (captureRound) and encoded only when saved.
type roundState struct {
	pathState
	obj func(*gob.Encoder) error
	// part, when not nil, is the progress within the round (with the
	// fresh leaves evaluated so far): saved with the round's start
	part *pathState
}

// pathState is a capture of leaves with their kept rows, the interval
// path's counters and the tap's verdicts.
type pathState struct {
	leaves []Leaf // copies: a later round changes LA, LB, Ways in place
	kept   []*keptRows
	ip     ckptPath
	tap    map[[2]float64][][]int8
	tapN   int
	hasTap bool
}

func captureRound(ip *IntervalPath, obj Objective, leaves []*Leaf) *roundState {
	s := &roundState{pathState: capturePath(ip, leaves)}
	s.obj = obj.SaveState(leaves)
	return s
}

// capturePath captures leaves (their fields and kept rows: the kept rows
// are never changed once made, so they are shared), the interval path's
// counters and the tap's verdicts (copied).
func capturePath(ip *IntervalPath, leaves []*Leaf) pathState {
	s := pathState{leaves: make([]Leaf, len(leaves)), kept: make([]*keptRows, len(leaves))}
	for k, l := range leaves {
		s.leaves[k] = *l
		s.kept[k] = l.kept
	}
	ip.mu.Lock()
	s.ip = ckptPath{Evals: ip.evals, KeptTotal: ip.keptTotal, KeptRefused: ip.keptRefused, RowsReused: ip.rowsReused, DeadRowN: ip.deadRowN, ProbeSettled: ip.probeSettled,
		PatternRows: ip.patternRows, CarryRows: ip.carryRows, CarryDerived: ip.carryDerived, CarryUnits: ip.carryUnits,
		KeepKinked: ip.keepKinked, DropSettled: ip.dropSettled, Probe: ip.probe}
	ip.mu.Unlock()
	if t := ip.acc; t != nil {
		t.mu.Lock()
		s.hasTap, s.tapN = true, t.rows
		s.tap = make(map[[2]float64][][]int8, len(t.leaves))
		for k, l := range t.leaves {
			s.tap[k] = append([][]int8(nil), l.v...)
		}
		t.mu.Unlock()
	}
	return s
}

// encodeLeaves returns the saved form of s's leaves.
func (s *pathState) encodeLeaves() []ckptLeaf {
	out := make([]ckptLeaf, len(s.leaves))
	for k := range s.leaves {
		out[k].L = s.leaves[k]
		if kr := s.kept[k]; kr != nil {
			ck := &ckptKept{Examples: kr.examples, Chunks: make([]ckptChunkKeep, len(kr.chunks))}
			for c, ch := range kr.chunks {
				if ch != nil {
					ck.Chunks[c] = ckptChunkKeep{Present: true, Rows: ch.rows, DL: ch.dl, D2L: ch.d2l, L: ch.l, Kink: ch.kink, DLC: ch.dlc, LC: ch.lc, DLCM: ch.dlcm, Mid: ch.mid}
				}
			}
			out[k].Kept = ck
		}
	}
	return out
}

// encodeTap returns the saved form of s's tap verdicts (nil without a tap).
func (s *pathState) encodeTap() *ckptTap {
	if !s.hasTap {
		return nil
	}
	t := &ckptTap{Rows: s.tapN}
	for k, v := range s.tap {
		tl := ckptTapLeaf{A: k[0], B: k[1], Chunks: make([]ckptTapChunk, len(v))}
		for c, x := range v {
			tl.Chunks[c] = ckptTapChunk{Present: x != nil, V: x}
		}
		t.Leaves = append(t.Leaves, tl)
	}
	sortTapLeaves(t.Leaves) // a map's order is random: the file is the same for the same state
	return t
}

// encode returns the gob payload of s.
func (s *roundState) encode() ([]byte, error) {
	pl := checkpointPayload{Leaves: s.encodeLeaves(), IP: s.ip, Tap: s.encodeTap()}
	if p := s.part; p != nil {
		pl.Partial = &ckptPartial{Fresh: p.encodeLeaves(), IP: p.ip, Tap: p.encodeTap()}
	}
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(&pl); err != nil {
		return nil, err
	}
	if err := s.obj(enc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// evaluated is the number of the round's fresh leaves s saves evaluated.
func (s *roundState) evaluated() int {
	if s.part == nil {
		return 0
	}
	return len(s.part.leaves)
}

func sortTapLeaves(ls []ckptTapLeaf) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].A < ls[j].A || (ls[i].A == ls[j].A && ls[i].B < ls[j].B) })
}

// save writes s to c.File atomically (a temporary name in the same
// directory, fsync, rename, fsync of the directory).
func (c *Checkpoint) save(stage string, s *roundState) error {
	payload, err := s.encode()
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.File, err)
	}
	sum := sha256.Sum256(payload)
	h, _ := json.Marshal(checkpointHeader{Stage: stage, Key: c.Key, Saved: time.Now().UTC().Format(time.RFC3339), Leaves: len(s.leaves), Evaluated: s.evaluated(),
		Seconds:      c.prior + time.Since(c.began).Seconds(),
		PayloadBytes: len(payload), PayloadSHA256: hex.EncodeToString(sum[:]), KeyParts: c.KeyParts})
	dir := filepath.Dir(c.File)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(c.File)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	w := bufio.NewWriter(f)
	w.WriteString(checkpointMagic + "\n")
	w.Write(h)
	w.WriteString("\n")
	w.Write(payload)
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.File)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s: %w", c.File, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	if c.resumable != nil {
		*c.resumable = true
	}
	return nil
}

// load reads c.File: nil, nil when there is none, or when it is ignored
// (Fresh, or saved under another key or stage: said through Notify); a
// *CheckpointError when it cannot be trusted.
func (c *Checkpoint) load(stage string) (*checkpointHeader, []byte, error) {
	b, err := os.ReadFile(c.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, &CheckpointError{c.File, err}
	}
	if c.Fresh {
		c.notify("%s: ignoring checkpoint %s (--fresh); it is replaced at the first save", stage, c.File)
		return nil, nil, nil
	}
	h, payload, err := parseCheckpoint(c.File, b)
	if err != nil {
		return nil, nil, err
	}
	if err := c.mismatch(h, stage); err != nil {
		return nil, nil, err
	}
	if c.resumable != nil {
		*c.resumable = true
	}
	return h, payload, nil
}

// mismatch returns a *CheckpointError when the file's header h was saved
// by another search or under another key than c's: another build of the
// program, other inputs or other settings. The file is not resumed, and it
// is not replaced either (hours of a search may be in it, and the command
// or build that saved it can still resume it): the command refuses, and
// --fresh (Fresh) discards it.
func (c *Checkpoint) mismatch(h *checkpointHeader, stage string) error {
	if h.Stage == stage && h.Key == c.Key {
		return nil
	}
	return &CheckpointError{c.File, fmt.Errorf("it was saved %s (key %.12s…, this run's %.12s…), so this run cannot resume it; it is kept, not replaced (the command and build that saved it can resume it)", keyDiff(*h, stage, c.KeyParts), h.Key, c.Key)}
}

// parseCheckpoint checks the integrity of the checkpoint file's bytes b
// (its first line, header, payload length and SHA-256) and returns its
// header and payload; a *CheckpointError naming file when it cannot be
// trusted.
func parseCheckpoint(file string, b []byte) (*checkpointHeader, []byte, error) {
	bad := func(format string, args ...any) error { return &CheckpointError{file, fmt.Errorf(format, args...)} }
	magic, rest, ok := bytes.Cut(b, []byte("\n"))
	if string(magic) == "certify-checkpoint 1" {
		return nil, nil, bad("saved by an older version of this program (checkpoint format 1, this one reads %q), which did not save progress within a round", checkpointMagic)
	}
	if !ok || string(magic) != checkpointMagic {
		return nil, nil, bad("not a checkpoint of this program (its first line is not %q)", checkpointMagic)
	}
	hl, payload, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, nil, bad("truncated: the header line is not complete")
	}
	var h checkpointHeader
	if err := json.Unmarshal(hl, &h); err != nil {
		return nil, nil, bad("header: %v", err)
	}
	if len(payload) != h.PayloadBytes {
		return nil, nil, bad("truncated or extended: the payload has %d bytes, the header says %d", len(payload), h.PayloadBytes)
	}
	if sum := sha256.Sum256(payload); hex.EncodeToString(sum[:]) != h.PayloadSHA256 {
		return nil, nil, bad("the payload's SHA-256 %x is not the header's %s (corrupt)", sum, h.PayloadSHA256)
	}
	return &h, payload, nil
}

// Verify checks, before any work, that the files of Analyze's searches in
// c.Dir that exist can be trusted (format, header, length, SHA-256) and
// were saved by the searches Analyze runs with o (o.Checkpoint is c): the
// same stage and key. A corrupt file, or one this run could not resume,
// is then refused at once, not after the minutes of grid evaluation that
// precede the certificate. It returns the first *CheckpointError; nil
// when c is nil, Fresh (existing files are ignored), or the files are
// sound and this run's, or absent.
func (c *Checkpoint) Verify(o Options) error {
	if c == nil || c.Dir == "" || c.Fresh {
		return nil
	}
	o = o.WithDefaults() // as Analyze does before its searches
	o.Checkpoint = c
	cert, acc := o.searchCheckpoints()
	for _, s := range []struct {
		ck    *Checkpoint
		stage string
	}{{cert, (*Monotonicity)(nil).Stage()}, {acc, (*AccuracyObjective)(nil).Stage()}} {
		b, err := os.ReadFile(s.ck.File)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return &CheckpointError{s.ck.File, err}
		}
		h, _, err := parseCheckpoint(s.ck.File, b)
		if err != nil {
			return err
		}
		if err := s.ck.mismatch(h, s.stage); err != nil {
			return err
		}
	}
	return nil
}

// keyDiff says how a checkpoint's header h differs from this run's stage
// and key parts.
func keyDiff(h checkpointHeader, stage string, parts map[string]string) string {
	if h.Stage != stage {
		return fmt.Sprintf("by the %s search, not the %s one", h.Stage, stage)
	}
	var diff []string
	for k, v := range parts {
		if h.KeyParts[k] != v {
			diff = append(diff, k)
		}
	}
	for k := range h.KeyParts {
		if _, ok := parts[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	if len(diff) == 0 {
		return "under another key"
	}
	return "with other " + strings.Join(diff, ", ")
}

// restoreRound decodes a payload into leaves, the interval path's state,
// the tap's verdicts and (after Begin has run) the objective's state; and
// the progress within the round, if any (restoreFresh applies it once the
// round's Split has made its fresh leaves again).
func restoreRound(ip *IntervalPath, obj Objective, payload []byte) ([]*Leaf, *ckptPartial, error) {
	dec := gob.NewDecoder(bytes.NewReader(payload))
	var pl checkpointPayload
	if err := dec.Decode(&pl); err != nil {
		return nil, nil, err
	}
	leaves, err := decodeLeaves(ip, pl.Leaves)
	if err != nil {
		return nil, nil, err
	}
	// no leaves: saved within the initial leaves, its progress in Partial
	if len(leaves) > 0 || pl.Partial == nil {
		if err := checkLeaves(leaves); err != nil {
			return nil, nil, err
		}
	}
	if err := restorePathState(ip, pl.IP, pl.Tap); err != nil {
		return nil, nil, err
	}
	if err := obj.RestoreState(leaves, dec); err != nil {
		return nil, nil, err
	}
	if p := pl.Partial; p != nil {
		if len(p.Fresh) == 0 {
			return nil, nil, errors.New("the progress within the round has no leaf")
		}
		if (p.Tap != nil) != (pl.Tap != nil) {
			return nil, nil, errors.New("the progress within the round and the round's start disagree on the accuracy tap")
		}
	}
	return leaves, pl.Partial, nil
}

// restoreFresh restores the saved progress p of a round into its fresh
// leaves (made again by the same Split, their parents' kept rows released):
// the first len(p.Fresh) become the saved evaluated leaves (in place: the
// round's leaves point to them), and the interval path's counters and the
// tap's verdicts those after them. It returns the number restored, and an
// error when the saved leaves are not the first fresh leaves.
func restoreFresh(ip *IntervalPath, fresh []*Leaf, p *ckptPartial) (int, error) {
	if len(p.Fresh) > len(fresh) {
		return 0, fmt.Errorf("the progress within the round has %d evaluated leaves, the round's split made %d", len(p.Fresh), len(fresh))
	}
	saved, err := decodeLeaves(ip, p.Fresh)
	if err != nil {
		return 0, err
	}
	for k, l := range saved {
		if l.A != fresh[k].A || l.B != fresh[k].B {
			return 0, fmt.Errorf("evaluated leaf %d is [%v, %v], the round's split made [%v, %v]", k, l.A, l.B, fresh[k].A, fresh[k].B)
		}
	}
	for k, l := range saved {
		*fresh[k] = *l
	}
	return len(saved), restorePathState(ip, p.IP, p.Tap)
}

// decodeLeaves decodes saved leaves with their kept rows.
func decodeLeaves(ip *IntervalPath, ls []ckptLeaf) ([]*Leaf, error) {
	leaves := make([]*Leaf, len(ls))
	for k := range ls {
		l := ls[k].L
		l.kept, l.parent = nil, nil
		if ck := ls[k].Kept; ck != nil {
			if len(ck.Chunks) != len(ip.chunks) {
				return nil, fmt.Errorf("leaf %d keeps rows of %d chunks, the path has %d", k, len(ck.Chunks), len(ip.chunks))
			}
			kr := &keptRows{examples: ck.Examples, chunks: make([]*chunkKeep, len(ck.Chunks))}
			for c, ch := range ck.Chunks {
				if ch.Present {
					n := ip.chunks[c][1] - ip.chunks[c][0]
					for _, r := range ch.Rows {
						if r < 0 || int(r) >= n {
							return nil, fmt.Errorf("leaf %d keeps row %d of chunk %d (%d rows)", k, r, c, n)
						}
					}
					kr.chunks[c] = &chunkKeep{rows: ch.Rows, dl: ch.DL, d2l: ch.D2L, l: ch.L, kink: ch.Kink, dlc: ch.DLC, lc: ch.LC, dlcm: ch.DLCM, mid: ch.Mid}
				}
			}
			l.kept = kr
		}
		leaves[k] = &l
	}
	return leaves, nil
}

// restorePathState sets the interval path's counters and switches to s
// and the tap's verdicts to tap.
func restorePathState(ip *IntervalPath, s ckptPath, tap *ckptTap) error {
	ip.mu.Lock()
	ip.evals, ip.keptTotal, ip.rowsReused, ip.deadRowN, ip.probeSettled = s.Evals, s.KeptTotal, s.RowsReused, s.DeadRowN, s.ProbeSettled
	ip.patternRows, ip.carryRows, ip.carryDerived, ip.carryUnits = s.PatternRows, s.CarryRows, s.CarryDerived, s.CarryUnits
	ip.keepKinked, ip.dropSettled, ip.probe = s.KeepKinked, s.DropSettled, s.Probe
	ip.keptRefused = s.KeptRefused
	ip.mu.Unlock()
	if (tap != nil) != (ip.acc != nil) {
		return fmt.Errorf("saved with the accuracy tap %v, resumed with it %v", tap != nil, ip.acc != nil)
	}
	if t := ip.acc; t != nil {
		t.mu.Lock()
		t.rows = tap.Rows
		t.leaves = map[[2]float64]*tapLeaf{}
		for _, tl := range tap.Leaves {
			v := make([][]int8, len(tl.Chunks))
			for c, x := range tl.Chunks {
				if x.Present {
					v[c] = x.V
					if v[c] == nil {
						v[c] = []int8{}
					}
				}
			}
			t.leaves[[2]float64{tl.A, tl.B}] = &tapLeaf{v: v}
		}
		t.mu.Unlock()
	}
	return nil
}

// checkLeaves checks that leaves partition [0, 1] in order.
func checkLeaves(leaves []*Leaf) error {
	if len(leaves) == 0 {
		return errors.New("no leaves")
	}
	if leaves[0].A != 0 || leaves[len(leaves)-1].B != 1 {
		return fmt.Errorf("the leaves cover [%v, %v], not [0, 1]", leaves[0].A, leaves[len(leaves)-1].B)
	}
	for k := 1; k < len(leaves); k++ {
		if leaves[k].A != leaves[k-1].B || !(leaves[k].A < leaves[k].B) {
			return fmt.Errorf("leaf %d [%v, %v] does not follow [%v, %v]", k, leaves[k].A, leaves[k].B, leaves[k-1].A, leaves[k-1].B)
		}
	}
	return nil
}

// PathDigest returns the SHA-256 (hex) of what a certificate on p reads:
// the model's layers (their spec), θ0, δ (every tensor's name, shape and
// float64 bits, BatchNorm buffers included), the examples' inputs and
// targets, the chunking, precision and BatchNorm policy. A checkpoint's key
// includes it, so that other weights or data never resume one.
func PathDigest(p *functionspace.Path) string {
	h := sha256.New()
	spec, _ := json.Marshal(p.Model.Spec)
	h.Write(spec)
	f := func(xs []float64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(len(xs)))
		h.Write(b[:])
		for _, x := range xs {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
	}
	for _, st := range []nn.State{p.Theta0, p.Delta} {
		names := make([]string, 0, len(st))
		for k := range st {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(h, "%s %v\n", k, st[k].Shape)
			f(st[k].Data)
		}
	}
	r, c := p.X.Dims()
	fmt.Fprintf(h, "X %d %d\n", r, c)
	f(p.X.RawMatrix().Data)
	if p.Targets.Labels != nil {
		fmt.Fprintf(h, "labels %v\n", p.Targets.Labels)
	}
	if p.Targets.Values != nil {
		f(p.Targets.Values.RawMatrix().Data)
	}
	fmt.Fprintf(h, "chunks %v precision %s bn %s ref %d\n", p.Chunks(), p.Precision(), p.BNPolicy(), p.BNReference())
	return hex.EncodeToString(h.Sum(nil))
}

// noteResumed notes in r that the search reported under key resumed from
// ck's file (nothing when it did not): its seconds, total, include the
// wall time of the processes before this one, while the report's own
// seconds count this process alone.
func (r *Report) noteResumed(key string, ck *Checkpoint, total float64) {
	if p := ck.PriorSeconds(); p > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%s resumed from the checkpoint %s: %s.seconds (%.1f) is the whole search's wall time, %.1f of it in earlier processes; seconds counts this process alone", key, ck.File, key, total, p))
	}
}
