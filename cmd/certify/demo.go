package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/certify-mli/certify/rundir"
)

// demoCmd trains a 784-64-10 ReLU MLP with SGD on the built-in MNIST subset
// (5000 training images, embedded in the binary) and analyses its run.
func demoCmd(ctx context.Context, args []string) error {
	tf := trainFlags{cfg: rundir.DefaultTrainConfig()}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	out := fs.String("out", "runs/demo", "run directory to write (replaced if it exists)")
	epochs := fs.Int("epochs", 3, "passes over the 5000 training images")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tf.cfg.Data.Name = "mnist-small"
	tf.cfg.Arch, tf.cfg.Act, tf.cfg.Loss = "784-64-10", "relu", "cross_entropy"
	tf.cfg.Optim, tf.cfg.LR, tf.cfg.Momentum = "sgd", 0.05, 0.9
	tf.cfg.Epochs, tf.cfg.Batch, tf.cfg.Init, tf.cfg.InitScale = *epochs, 64, "pytorch", 1
	tf.out, tf.force, tf.cfg.DType = *out, true, "f32"
	start := time.Now()
	if _, err := train(ctx, tf, stderr); err != nil {
		return err
	}
	var af analyzeFlags
	newAnalyzeFlagSet(&af).Parse(nil)
	af.run = *out
	r, err := analyze(ctx, af, []string{"certify", "--run", *out})
	if err != nil {
		return err
	}
	printSummary(stdout, *out, r)
	fmt.Fprintf(stdout, "demo done in %.1fs; figures in %s/*.png\n", time.Since(start).Seconds(), *out)
	return nil
}
