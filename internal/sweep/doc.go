// Package sweep crosses the axes of a grid file into grid points, names them,
// keeps the sweep's index (sweep.json), runs points on a local worker pool and
// writes SLURM job-array scripts that run the same points on a cluster.
//
// A grid file is JSON:
//
//	{
//	  "description": "free text, ignored",
//	  "base":     {"data": "mnist-small", "limit": 1000, "epochs": 1},
//	  "axes":     {"lr": [0.01, 0.1], "optim": ["sgd", "adam"]},
//	  "analysis": {"alphas": 11, "no-figures": true}
//	}
//
// Keys of "base" and "axes" are flag names of `certify train` and keys of
// "analysis" flag names of the analysis (`certify --run`). The package knows
// no key itself: Parse checks every name and value against the typed
// configurations its Schema makes (Config: certify's rundir.TrainConfig and
// the analysis's configuration, a struct whose fields are keyed by their
// flag names through Struct), so a setting added to `certify train` is at
// once a valid axis. An unknown key is refused naming the key and the grid
// file. Grid points are the Cartesian product of the axes in file order, the
// first axis varying slowest; point i is always the same point of an
// unchanged grid file, which is what lets a SLURM array task i and a local
// worker run the same thing.
//
// A point's name joins flag=value for the axes with more than one value, in
// file order, with "_" (e.g. lr=0.1_optim=adam_arch=784-64-10), every
// character outside [A-Za-z0-9._+=-] replaced by "-". Names are unique within
// a grid (Parse refuses a grid where two points would share one).
package sweep
