package certify

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"pgregory.net/rapid"
)

// resumeRun is the certificate and the accuracy bounds of Analyze on p
// (the certificate's passes feeding the accuracy tap), each search
// checkpointed in dir when dir is not "", with ctx; their JSON with the
// wall-clock seconds zeroed.
func resumeRun(ctx context.Context, p *functionspace.Path, o CertifyOptions, accIntervals int, dir string, every time.Duration) (cert, acc []byte, keptRefused int, err error) {
	tap := newAccTap(p)
	co := o
	co.acc = tap
	var ck *Checkpoint
	if dir != "" {
		ck = &Checkpoint{Dir: dir, Key: "test", Every: every}
		co.Checkpoint = ck.stageFile(CertificateCheckpoint, co.keyed(tap != nil))
	}
	c, e, err := certify(ctx, p, co)
	if err != nil {
		return nil, nil, 0, err
	}
	keptRefused = e.keptRefused // before the accuracy search resets the counters
	ao := AccuracyOptions{MaxIntervals: accIntervals, MinWidth: 1e-5, Tol: 1e-4, Workers: o.Workers, Progress: o.Progress}
	if ck != nil {
		ao.Checkpoint = ck.stageFile(AccuracyCheckpoint, ao.keyed(true))
	}
	a, err := certifyAccuracy(ctx, p, ao, tap)
	if err != nil {
		return nil, nil, 0, err
	}
	c.Seconds, a.Seconds = 0, 0
	cb, err := json.Marshal(c)
	if err != nil {
		return nil, nil, 0, err
	}
	ab, err := json.Marshal(a)
	return cb, ab, keptRefused, err
}

// TestCheckpointResumeBitIdentical: on random small MLPs and residual nets,
// the certificate and accuracy bounds of a run cancelled after a random
// number of rounds (once or twice, in either search), or within a round
// after a random number of sub-batches of its fresh leaves (cancelled, the
// progress saved; or hard-killed: resumed from the last file written, the
// save on cancellation discarded), and resumed from its checkpoints are
// byte for byte those of an uninterrupted run (with sub-batches of another
// size): the
// leaves, their kept rows (drop-out; residual nets keep kinked rows), the
// objectives' state (the verdict, whose Δ refinement under DeltaTol
// follows; the accuracy's inherited verdicts and carried coefficients), the
// tap's verdicts and the counters are all restored, those of the round's
// evaluated fresh leaves too. The save interval is
// drawn too (every round, or only on cancellation and at the end). Over the
// run, some resumed states held kept rows, some were past the verdict and
// some held progress within a round, with kept rows among its leaves, after
// a hard kill too, some within the initial leaves (a round whose start has
// no leaves); and in some runs a lowered cap on kept rows
// (CertifyOptions.keptCap) refused some leaves' rows, whose choice must not
// depend on the sub-batches (releaseParents). The test fails when any of
// these is not exercised.
func TestCheckpointResumeBitIdentical(t *testing.T) {
	keptSeen, decidedSeen, resumes, partSeen, partKeptSeen, hardPartSeen, cappedSeen, initialSeen := 0, 0, 0, 0, 0, 0, 0, 0
	rapid.Check(t, func(t *rapid.T) {
		var p *functionspace.Path
		if rapid.Bool().Draw(t, "residual") {
			p = randomConvResidualPath(t)
		} else {
			p = randomCertPath(t)
		}
		tol := rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 1e-1}).Draw(t, "tol")
		dtol := rapid.SampledFrom([]float64{0, 1e-2, DefaultDeltaTol}).Draw(t, "delta_tol")
		o := CertifyOptions{Tolerance: tol, DeltaTol: dtol, MaxIntervals: rapid.SampledFrom([]int{48, 96}).Draw(t, "budget"), MinWidth: 1e-7,
			InitialIntervals: rapid.SampledFrom([]int{4, 8}).Draw(t, "initial"), Workers: rapid.IntRange(1, 2).Draw(t, "workers")}
		every := rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Hour}).Draw(t, "every")
		// a cap on kept rows that binds (about two leaves' settled rows):
		// the leaves that keep rows must not depend on the sub-batches
		if rapid.Bool().Draw(t, "capped") {
			o.keptCap = rapid.IntRange(1, 2*p.N).Draw(t, "kept_cap")
		}
		wantC, wantA, refused, err := resumeRun(context.Background(), p, o, 64, "", 0)
		if refused > 0 {
			cappedSeen++
		}
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "ckpt")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		var gotC, gotA []byte
		for stops := rapid.IntRange(0, 2).Draw(t, "stops"); ; stops-- {
			ctx, cancel := context.WithCancel(context.Background())
			oo := o
			oo.subBatch = rapid.IntRange(0, 3).Draw(t, "sub_batch") // 0: subBatch(Workers)
			file := filepath.Join(dir, CertificateCheckpoint)
			var last []byte // hard kill: the file as it was when killed (nil: none)
			hard := false
			if stops > 0 {
				switch mode := rapid.IntRange(0, 2).Draw(t, "mode"); mode {
				case 0: // cancelled between rounds (or within a round's first sub-batch)
					k, calls := rapid.IntRange(1, 30).Draw(t, "k"), 0
					oo.Progress = func(string, int, int) {
						if calls++; calls == k {
							cancel()
						}
					}
				case 1, 2: // within a round, after k sub-batches: cancelled, or hard-killed
					hard = mode == 2
					k, calls := rapid.IntRange(1, 20).Draw(t, "k_sub"), 0
					oo.afterSubBatch = func(done, total int) {
						if calls++; calls != k {
							return
						}
						if hard {
							b, err := os.ReadFile(file)
							if err != nil && !errors.Is(err, os.ErrNotExist) {
								t.Fatal(err)
							}
							last = b
						}
						cancel()
					}
				default:
					t.Fatalf("mode %d", mode)
				}
			}
			gotC, gotA, _, err = resumeRun(ctx, p, oo, 64, dir, every)
			cancel()
			if stops > 0 && errors.Is(err, context.Canceled) {
				if hard { // the save on cancellation never happened
					if last == nil {
						os.Remove(file)
					} else if err := os.WriteFile(file, last, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				kept, decided, part, partKept, initial := inspectCheckpoint(t, file)
				if initial {
					initialSeen++
				}
				if part > 0 {
					partSeen++
					partKeptSeen += partKept
					if hard {
						hardPartSeen++
					}
				}
				keptSeen += kept
				if decided {
					decidedSeen++
				}
				resumes++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if !bytes.Equal(gotC, wantC) {
			t.Fatalf("resumed certificate differs:\n got %s\nwant %s", gotC, wantC)
		}
		if !bytes.Equal(gotA, wantA) {
			t.Fatalf("resumed accuracy bounds differ:\n got %s\nwant %s", gotA, wantA)
		}
	})
	t.Logf("%d resumes; %d kept rows and %d decided verdicts in the saved states; %d within a round (%d after a hard kill, %d within the initial leaves), %d kept rows in their evaluated leaves; the kept-row cap refused rows in %d runs",
		resumes, keptSeen, decidedSeen, partSeen, hardPartSeen, initialSeen, partKeptSeen, cappedSeen)
	if keptSeen == 0 || decidedSeen == 0 || resumes == 0 || partSeen == 0 || hardPartSeen == 0 || partKeptSeen == 0 || cappedSeen == 0 || initialSeen == 0 {
		t.Errorf("not exercised: %d resumes, %d kept rows, %d decided states, %d within a round (%d hard, %d initial), %d kept rows in them, %d runs where the cap bound",
			resumes, keptSeen, decidedSeen, partSeen, hardPartSeen, initialSeen, partKeptSeen, cappedSeen)
	}
}

// inspectCheckpoint returns the kept rows of the certificate checkpoint
// file f (0 when there is none), whether its verdict was decided, and the
// evaluated fresh leaves of the progress within a round and their kept rows.
func inspectCheckpoint(t *rapid.T, f string) (kept int, decided bool, part, partKept int, initial bool) {
	b, err := os.ReadFile(f)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, 0, 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := bytes.Cut(b, []byte("\n"))
	_, payload, _ := bytes.Cut(rest, []byte("\n"))
	dec := gob.NewDecoder(bytes.NewReader(payload))
	var pl checkpointPayload
	var verdict string
	if err := dec.Decode(&pl); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&verdict); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range pl.Leaves {
		if l.Kept != nil {
			n += l.Kept.Examples
		}
	}
	if pl.Partial != nil {
		part = len(pl.Partial.Fresh)
		for _, l := range pl.Partial.Fresh {
			if l.Kept != nil {
				partKept += l.Kept.Examples
			}
		}
	}
	return n, verdict != "", part, partKept, len(pl.Leaves) == 0
}

// TestCheckpointCoversEveryField: the state a checkpoint saves is listed
// field by field (checkpoint.go mirrors the unexported types), so a field
// added to one of these types must be added to the checkpoint, or to this
// list with the reason it need not be saved; otherwise a resumed search
// could read it unset (and a later field of the kept rows read by the
// children would be missing on resuming).
func TestCheckpointCoversEveryField(t *testing.T) {
	for _, c := range []struct {
		v    any
		want []string
	}{
		// exported fields are saved by gob; kept is saved; parent is nil at the start of a round
		{Leaf{}, []string{"A", "B", "DL", "Integral", "LC", "DLC", "Smooth", "Jump", "LR", "LA", "LB", "Rise", "RiseLeft", "RiseRight", "Ways", "kept", "parent"}},
		{keptRows{}, []string{"chunks", "examples", "released"}}, // released is false for a live leaf
		{chunkKeep{}, []string{"rows", "dl", "d2l", "l", "kink", "dlc", "lc", "dlcm", "mid"}},
		{accCount{}, []string{"right", "wrong", "undecided", "cfs"}},
		{carryCoef{}, []string{"ab", "rows", "A", "BC", "E", "cross"}},
		{tapLeaf{}, []string{"v"}},
		// o, Cert, ip, l0, l1 and exactEnds are set again by NewMonotonicity and Begin;
		// end, in, first, last, upperWhole, upperHalves by Bound before Split reads them; decided, decidedLeaves, decidedEvals are
		// saved; renotify is set by RestoreState (a restored decided verdict); wholeLeaves is a measurement switch no command sets (false)
		{Monotonicity{}, []string{"o", "Cert", "ip", "l0", "l1", "decided", "decidedLeaves", "decidedEvals", "renotify", "end", "in", "first", "last", "wholeLeaves", "upperWhole", "upperHalves", "exactEnds"}},
		// the options, ctx, tap, ip, labels, split by the constructor and begin; Result by
		// begin, filled in Finish; leafEnds by Finish; counts, parents and the counters are saved
		{AccuracyObjective{}, []string{"MinWidth", "MaxIntervals", "Workers", "Tol", "Result", "ip", "labels", "counts", "parents",
			"rowsReused", "ctx", "noInherit", "leafEnds", "coefRows", "split", "noSplit", "tap", "tapLeaves", "tapDecided", "stageRows"}},
		// saved (ckptPath): evals, keptTotal, keptRefused, rowsReused, patternRows, deadRowN, probeSettled,
		// carryRows, carryDerived, carryUnits, dropSettled, keepKinked, probe; acc's verdicts
		// (ckptTap). keptCap set by certify from its options. Built again by NewIntervalPath from the same path: p … layers, scale, line,
		// jumps, patterns, dead, deadSpan, recompute … nestedBN (stats is a cache), backward,
		// carry; dl1, dl0, dl0Next by ends and Begin; outputsOnly by the search's caller; notes
		// unread; mu, statsMu locks; midAllRows a measurement switch no command sets (false)
		{IntervalPath{}, []string{"p", "chunks", "start", "a", "b", "kink0", "dl1", "dl0", "layers", "scale", "mu", "evals", "line", "notes",
			"jumps", "outputsOnly", "dropSettled", "keepKinked", "midAllRows", "keptTotal", "keptCap", "keptRefused", "rowsReused", "patterns", "patternRows", "dead", "deadSpan",
			"deadRowN", "probe", "probeSettled", "dl0Next", "recompute", "refA", "refB", "refKink0", "refX", "statsMu", "stats", "nestedBN",
			"backward", "carry", "carryRows", "carryDerived", "carryUnits", "acc"}},
		// the options, ip, l0, l1, Cert set by the constructor and begin; up by Bound
		{BarrierObjective{}, []string{"Gap", "MinWidth", "MaxIntervals", "MinBatch", "Cert", "ip", "l0", "l1", "up"}},
	} {
		typ := reflect.TypeOf(c.v)
		var got []string
		for i := 0; i < typ.NumField(); i++ {
			got = append(got, typ.Field(i).Name)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s has fields %v; the checkpoint (checkpoint.go, ObjectiveState) covers %v: save the new ones or list why not", typ.Name(), got, c.want)
		}
	}
}
