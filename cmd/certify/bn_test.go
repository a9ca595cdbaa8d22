package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// TestBatchNormPolicies trains a BatchNorm MLP on mnist-small and analyses
// it with both --bn policies. interpolate (the default) attempts the
// certificate and reaches a verdict; its L(1) is the evaluation-mode loss of
// θT (Model.Forward). recompute also attaches the certificate (reference
// statistics enclosed in interval arithmetic), and with the reference batch = all 300 examples its L(1) is
// the loss of θT in training-mode normalisation over them (Model.ForwardTrain,
// checked against PyTorch in package nn).
func TestBatchNormPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	dir := filepath.Join(t.TempDir(), "bn")
	if code, _, e := runCLI(t, "train", "--data", "mnist-small", "--arch", "784-16-10", "--batchnorm", "--epochs", "1", "--limit", "500", "--out", dir, "--force", "--quiet"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, e)
	}
	run, err := rundir.Read(dir, 300)
	if err != nil {
		t.Fatal(err)
	}
	evalLoss, _ := nn.Loss(run.Model.Spec.Loss, run.Model.Forward(run.ThetaT, run.X), run.Targets, false)
	train := run.Model.ForwardTrain(run.ThetaT.Clone(), run.X)
	trainLoss, _ := nn.Loss(run.Model.Spec.Loss, train[len(train)-1], run.Targets, false)

	for _, c := range []struct {
		bn   string
		want float64
	}{{"interpolate", evalLoss}, {"recompute", trainLoss}} {
		args := []string{"--run", dir, "--examples", "300", "--no-figures", "--quiet", "--alphas", "11", "--gauss-tol", "1e-2"}
		if c.bn != "interpolate" {
			args = append(args, "--bn", c.bn, "--bn-reference", "300")
		}
		if code, _, e := runCLI(t, args...); code != 0 {
			t.Fatalf("--bn %s: exit %d: %s", c.bn, code, e)
		}
		// Both use other settings than the default analysis's, so neither
		// writes the run's certificate.json; recompute is a variant of the
		// line as well: its directory's name starts with bn=recompute.
		settings := "examples=300_alphas=11_gauss-tol=0.01"
		file := filepath.Join(dir, "variants", settings, VariantReportFile)
		if c.bn == "recompute" {
			file = filepath.Join(dir, "variants", "bn=recompute_"+settings+"_bn-reference=300", VariantReportFile)
		}
		if _, err := os.Stat(filepath.Join(dir, "certificate.json")); !os.IsNotExist(err) {
			t.Errorf("--bn %s with other settings wrote the run's certificate.json (%v)", c.bn, err)
		}
		r, err := certify.ReadReport(file)
		if err != nil {
			t.Fatal(err)
		}
		if r.BNPolicy != c.bn {
			t.Errorf("--bn %s: bn_policy %q", c.bn, r.BNPolicy)
		}
		l1 := r.Loss[len(r.Loss)-1]
		if math.Abs(l1-c.want) > 1e-9*(1+c.want) {
			t.Errorf("--bn %s: L(1) = %v, want %v", c.bn, l1, c.want)
		}
		switch c.bn {
		case "interpolate":
			if r.Certificate == nil || r.DeltaBounds == nil {
				t.Errorf("interpolate: no certificate (verdict %q)", r.Verdict)
			}
		case "recompute":
			if r.Certificate == nil || r.DeltaBounds == nil || r.Options.BNReference != 300 {
				t.Errorf("recompute: certificate %v, bounds %v, bn_reference %d", r.Certificate, r.DeltaBounds, r.Options.BNReference)
			} else if r.Verdict != r.Certificate.Verdict {
				t.Errorf("recompute: verdict %q, the certificate's %q", r.Verdict, r.Certificate.Verdict)
			}
		}
	}
	if math.Abs(evalLoss-trainLoss) < 1e-3 {
		t.Errorf("the policies' L(1) agree (%v, %v): the run does not tell them apart", evalLoss, trainLoss)
	}
}
