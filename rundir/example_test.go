package rundir_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/certify-mli/certify/rundir"
)

// Train a small run from a typed configuration and read it back for
// analysis. 2 epochs of 200 examples in batches of 50 are 8 steps.
func ExampleTrain() {
	dir, _ := os.MkdirTemp("", "run")
	defer os.RemoveAll(dir)
	c := rundir.DefaultTrainConfig()
	for k, v := range map[string]string{"data": "mnist-small", "limit": "200", "arch": "784-12-10", "epochs": "2", "batch": "50"} {
		if err := c.Set(k, v); err != nil { // the keys of a sweep grid
			log.Fatal(err)
		}
	}
	out := filepath.Join(dir, "run")
	cfg, err := rundir.Train(context.Background(), c, rundir.Options{Out: out})
	if err != nil {
		log.Fatal(err)
	}
	run, err := rundir.Read(out, rundir.AllExamples)
	if err != nil {
		log.Fatal(err)
	}
	n, _ := run.X.Dims()
	fmt.Println(cfg.Steps, "steps;", n, "examples;", len(run.Model.Layers), "layers")
	// Output: 8 steps; 200 examples; 3 layers
}
