package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn/importer"
	"github.com/certify-mli/certify/nn/onnx"
)

// importCmd writes a run directory from a model trained elsewhere
// (docs/from-pytorch.md): two torch.save'd state_dicts, safetensors or .npz
// checkpoints with a model.json, or two ONNX graphs, plus evaluation data.
func importCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var o importer.Options
	fs.StringVar(&o.Init, "init", "", "θ0: torch.save'd state_dict (.pt/.pth), .safetensors, .npz or .onnx (required)")
	fs.StringVar(&o.Final, "final", "", "θT, in the same kind of file as --init (required)")
	fs.StringVar(&o.Model, "model", "", "model.json (RUN_FORMAT.md); required unless --init and --final are ONNX")
	fs.StringVar(&o.Data, "data", "", "evaluation data: .npz, .safetensors or .pt holding x [N, …] and y (labels [N] or targets [N, K]), or x.npy with --targets")
	fs.StringVar(&o.Targets, "targets", "", "y.npy, the labels or targets when --data is x.npy")
	fs.StringVar(&o.Dataset, "dataset", "", "instead of --data: a data set certify loads (mnist, fashion-mnist, mnist-small), written to config.json")
	fs.IntVar(&o.Limit, "limit", 0, "keep the first N examples (0: all)")
	fs.StringVar(&o.Loss, "loss", "", "mse or cross_entropy (default: model.json's; for ONNX, cross_entropy for labels, mse for float targets)")
	fs.StringVar(&o.Out, "out", "", "run directory to create (required; must not exist)")
	fs.BoolVar(&o.AllowFolded, "allow-folded", false, "import ONNX graphs whose BatchNorm looks folded into the weights (the report then analyses the folded parameterisation)")
	fs.BoolVar(&o.AllowTrainingBatchNorm, "allow-training-batchnorm", false, "import ONNX graphs whose BatchNormalization was exported in training mode (its running statistics were updated by the export's forward pass; refused otherwise)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rec, err := importer.Import(o)
	if err != nil {
		var we *importer.WriteError
		if errors.As(err, &we) {
			return err
		}
		return badInput(err)
	}
	data := rec.Data // absolute paths in import.json; the terminal echoes the user's spelling
	if o.Data != "" {
		data = o.Data
		if o.Targets != "" {
			data += " (x), " + o.Targets + " (y)"
		}
	}
	fmt.Fprintf(stdout, "imported %s from %s (θ0) and %s (θT): %s files, %s; loss %s; data %s\n", o.Out, o.Init, o.Final, rec.Init.Format, rec.Parameterisation, rec.Loss, data)
	for _, n := range rec.Notes {
		if strings.HasPrefix(n, "FOLDED") || strings.HasPrefix(n, "TRAINING-MODE") || strings.HasPrefix(n, onnx.LayerIndexWarning) {
			fmt.Fprintln(stderr, "certify: warning:", n)
			continue
		}
		fmt.Fprintln(stdout, "  note:", n)
	}
	fmt.Fprintf(stdout, "analyse it with: certify --run %s\n", o.Out)
	return nil
}

// readImportSummary reads dir/import.json for the report: nil when the
// run was not imported, an error naming the file when the record is broken.
func readImportSummary(dir string) (*certify.ImportSummary, error) {
	rec, err := importer.ReadRecord(dir)
	if rec == nil || err != nil {
		return nil, err
	}
	return &certify.ImportSummary{Init: rec.Init.File, Final: rec.Final.File, Format: rec.Init.Format,
		Parameterisation: rec.Parameterisation, LossSource: rec.LossSource, Notes: rec.Notes}, nil
}
