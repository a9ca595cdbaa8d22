package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Spawn keys of a grid's "spawn" section: the step K at which a child leaves
// its parent's data order, and the child's data-order seed S (certify
// train --spawn-from PARENT --at-step K --seed S; Frankle et al. 2020).
const (
	SpawnAtStep = "at-step"
	SpawnSeed   = "seed"
)

// SpawnSuffix joins a parent's name and its child's spawn settings in the
// child's name: PARENT+at-step=K_seed=S.
const SpawnSuffix = "+"

// parseSpawn reads a grid's "spawn" section,
//
//	"spawn": {"at-step": [0, 100, 500], "seed": [11, 12]}
//
// both keys required, each a non-empty list of distinct non-negative
// integers. It returns the two axes in the order at-step, seed, or an *Error
// naming the file and the field.
func parseSpawn(file string, raw json.RawMessage) ([]Axis, error) {
	fail := func(field string, format string, args ...any) error {
		return &Error{File: file, Field: field, Err: fmt.Errorf(format, args...)}
	}
	fields, err := object(file, raw, "spawn")
	if err != nil {
		return nil, err
	}
	got := map[string][]string{}
	for _, kv := range fields {
		field := "spawn." + kv.key
		if kv.key != SpawnAtStep && kv.key != SpawnSeed {
			return nil, fail(field, "unknown key (a spawn section has at-step and seed)")
		}
		var list []json.RawMessage
		if t := bytes.TrimSpace(kv.raw); len(t) == 0 || t[0] != '[' || json.Unmarshal(kv.raw, &list) != nil {
			return nil, fail(field, "want a list of integers, found %s", kind(kv.raw))
		}
		if len(list) == 0 {
			return nil, fail(field, "empty list: give at least one value")
		}
		seen := map[uint64]int{}
		for i, r := range list {
			ef := fmt.Sprintf("%s[%d]", field, i)
			v, err := strconv.ParseUint(string(bytes.TrimSpace(r)), 10, 64)
			if err != nil {
				return nil, fail(ef, "want a non-negative integer, found %s", bytes.TrimSpace(r))
			}
			if kv.key == SpawnAtStep && v > 1<<31-1 {
				return nil, fail(ef, "step %d is too large", v)
			}
			if j, dup := seen[v]; dup {
				return nil, fail(ef, "duplicate value %d (also %s[%d])", v, field, j)
			}
			seen[v] = i
			got[kv.key] = append(got[kv.key], strconv.FormatUint(v, 10))
		}
	}
	var axes []Axis
	for _, k := range []string{SpawnAtStep, SpawnSeed} {
		if got[k] == nil {
			return nil, fail("spawn", "missing %q: a spawn section needs both at-step and seed", k)
		}
		axes = append(axes, Axis{Flag: k, Values: got[k]})
	}
	return axes, nil
}

// spawnPoints returns the children of parents: for every parent (in index
// order), every at-step K (slowest) and seed S of spawn, a point named
// PARENT+at-step=K_seed=S whose Train is the two spawn settings and whose
// Parent is the parent's index. Their indices follow the parents'.
func spawnPoints(parents []Point, spawn []Axis) []Point {
	if len(spawn) != 2 {
		return nil
	}
	var pts []Point
	next := len(parents)
	for _, par := range parents {
		for _, k := range spawn[0].Values {
			for _, s := range spawn[1].Values {
				set := []Setting{{SpawnAtStep, k}, {SpawnSeed, s}}
				parent := par.Index
				pts = append(pts, Point{Index: next, Name: par.Name + SpawnSuffix + Name(set),
					Train: set, Vary: set, Parent: &parent})
				next++
			}
		}
	}
	return pts
}
