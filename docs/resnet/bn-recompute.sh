#!/bin/sh
# The study's BatchNorm runs re-analysed with certify's own `--bn recompute`
# (docs/resnet/README.md, "The same in certify").
#
# usage: bn-recompute.sh CERTIFY RUNS_DIR [EXAMPLES [EXTRA FLAGS...]]
#
# For every run RUNS_DIR/OPTIM/NAME whose model.json has a batchnorm2d, runs
#   CERTIFY --run RUN --bn recompute --examples EXAMPLES --alphas 21 --loss-only --no-figures EXTRA...
# (EXAMPLES default 25, the study's own; the reference batch whose statistics
# normalise every α is the same EXAMPLES examples, --bn-reference's default
# min(256, EXAMPLES)). The report goes to RUN/variants/bn=recompute_…/variant.json
# beside the study's certificate.json; `certify table RUNS_DIR --variants
# --cols bn` sets both side by side. A run whose variant exists is skipped.
# Prints per run the user and system CPU seconds (/usr/bin/time).
set -eu
certify=$1
runs=$2
n=${3:-25}
shift 2
[ $# -gt 0 ] && shift
for run in "$runs"/*/*/; do
	run=${run%/}
	[ -f "$run/model.json" ] || continue
	grep -q batchnorm2d "$run/model.json" || continue
	# The directory names the examples unless they are all the run's (the default).
	if [ -f "$run/variants/bn=recompute_examples=${n}_alphas=21_loss-only/variant.json" ] ||
		{ [ -f "$run/variants/bn=recompute_alphas=21_loss-only/variant.json" ] &&
			grep -q "\"examples\": $n," "$run/variants/bn=recompute_alphas=21_loss-only/variant.json"; }; then
		echo "skip $run (done)"
		continue
	fi
	/usr/bin/time -f "$run: %U s user %S s system" \
		"$certify" --run "$run" --bn recompute --examples "$n" --alphas 21 --loss-only --no-figures --quiet "$@"
done
