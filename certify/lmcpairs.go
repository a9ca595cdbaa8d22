package certify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// LMCReportFile is certify lmc's report in its --out directory.
const LMCReportFile = "lmc.json"

// LMCPair is one certify lmc report found by LoadLMCPairs, with the spawn
// of its two ends (Frankle et al. 2020's instability analysis) when both
// are run directories whose config.json records a spawn from one parent at
// one step, or when one end is a spawn at step k and the other is the very
// run it was spawned from: the parent is its own spawn at every k with its
// own seed (a spawn with S = the parent's seed reproduces the parent bit
// for bit, TestSpawnDeterminism), so (parent, spawn at k) is a pair of
// copies of the step-k network trained on with two data orders.
type LMCPair struct {
	// Dir is the directory holding lmc.json.
	Dir    string
	Report LMCReport
	// SpawnFrom is the parent run both ends were spawned from, SpawnStep
	// the step k (nil when the ends are not spawns of one parent at one
	// step, or their config.json could not be found), SpawnSeeds their
	// data-order seeds after step k (nil when not a spawn; the parent's
	// own seed for an end that is the parent).
	SpawnFrom  string
	SpawnStep  *int
	SpawnSeeds [2]*uint64
}

// spawnConfig is the part of a run's config.json that records a spawn
// (rundir.RunConfig's spawn_from, spawn_step, spawn_seed).
type spawnConfig struct {
	SpawnFrom string  `json:"spawn_from"`
	SpawnStep *int    `json:"spawn_step"`
	SpawnSeed *uint64 `json:"spawn_seed"`
	Seed      *uint64 `json:"seed"`
	// dir is the run directory the config.json was found in, base the
	// directory its path was resolved against ("" for the path as given).
	dir, base string
}

// LoadLMCPairs reads every lmc.json at or below each root (a directory
// holding lmc.json, or a tree of such directories), sorted by spawn step
// (pairs without one last) and then by directory. An end's run directory
// is looked up as recorded in lmc.json (a.path, b.path: relative to where
// certify lmc ran), then relative to the root and to the parent of the lmc
// directory; an end not found leaves the pair without a spawn step. No
// lmc.json under a root, or one that does not parse, is an error naming
// the file.
func LoadLMCPairs(roots []string) ([]LMCPair, error) {
	var pairs []LMCPair
	for _, root := range roots {
		var files []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == LMCReportFile {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no %s at or below it (the output of certify lmc --out DIR)", root, LMCReportFile)
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			pr := LMCPair{Dir: filepath.Dir(f)}
			if err := json.Unmarshal(body, &pr.Report); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(pr.Report.Alphas) < 2 || len(pr.Report.Loss) != len(pr.Report.Alphas) {
				return nil, fmt.Errorf("%s: alphas and loss: want the same length ≥ 2, found %d and %d", f, len(pr.Report.Alphas), len(pr.Report.Loss))
			}
			var cs [2]*spawnConfig
			for i, ep := range []LMCEndpoint{pr.Report.A, pr.Report.B} {
				cs[i] = findSpawnConfig(ep.Path, root, filepath.Dir(pr.Dir))
			}
			if cs[0] != nil && cs[1] != nil {
				pr.SpawnSeeds = [2]*uint64{cs[0].SpawnSeed, cs[1].SpawnSeed}
				if cs[0].SpawnFrom != "" && cs[0].SpawnFrom == cs[1].SpawnFrom && cs[0].SpawnStep != nil && cs[1].SpawnStep != nil && *cs[0].SpawnStep == *cs[1].SpawnStep {
					pr.SpawnFrom, pr.SpawnStep = cs[0].SpawnFrom, cs[0].SpawnStep
				}
				for i := range 2 {
					child, parent := cs[i], cs[1-i]
					if child.SpawnFrom != "" && child.SpawnStep != nil && parent.SpawnFrom == "" && isSpawnParent(child, parent) {
						pr.SpawnFrom, pr.SpawnStep = child.SpawnFrom, child.SpawnStep
						pr.SpawnSeeds[1-i] = parent.Seed
					}
				}
			}
			pairs = append(pairs, pr)
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		si, sj := pairs[i].SpawnStep, pairs[j].SpawnStep
		switch {
		case si != nil && sj != nil && *si != *sj:
			return *si < *sj
		case (si == nil) != (sj == nil):
			return si != nil
		}
		return pairs[i].Dir < pairs[j].Dir
	})
	return pairs, nil
}

// findSpawnConfig reads the spawn keys of the run directory path, looked
// up as given, then below each of bases; nil when no config.json is found
// or it does not parse.
func findSpawnConfig(path string, bases ...string) *spawnConfig {
	cands, cbases := []string{path}, []string{""}
	if !filepath.IsAbs(path) {
		for _, b := range bases {
			cands, cbases = append(cands, filepath.Join(b, path)), append(cbases, b)
		}
	}
	for i, c := range cands {
		body, err := os.ReadFile(filepath.Join(c, "config.json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil
		}
		sc := spawnConfig{dir: c, base: cbases[i]}
		if json.Unmarshal(body, &sc) != nil {
			return nil
		}
		return &sc
	}
	return nil
}

// isSpawnParent reports whether the run directory of parent is the one
// child's spawn_from names: spawn_from is resolved as the child's own path
// was (relative to the same base), then relative to the directory holding
// the child's run directory, and compared by file identity.
func isSpawnParent(child, parent *spawnConfig) bool {
	pst, err := os.Stat(parent.dir)
	if err != nil {
		return false
	}
	cands := []string{child.SpawnFrom}
	if !filepath.IsAbs(child.SpawnFrom) {
		cands = []string{filepath.Join(child.base, child.SpawnFrom), filepath.Join(filepath.Dir(child.dir), child.SpawnFrom)}
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && os.SameFile(st, pst) {
			return true
		}
	}
	return false
}
