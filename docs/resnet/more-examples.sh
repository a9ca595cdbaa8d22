#!/bin/sh
# Does the study's conclusion change with more examples in the analysis?
# (docs/resnet/README.md, "256 examples instead of 25").
#
# usage: more-examples.sh CERTIFY RUNS_DIR OPTIM/NAME... > more-examples.md
#
# For each named run of RUNS_DIR, analyses the line on all 256 training
# images (--examples 256, the run's whole training subset, 21 α, loss-only)
# under both BatchNorm policies, unless already done:
#   CERTIFY --run RUN --bn interpolate --examples 256 --alphas 21 --loss-only --no-figures
#   CERTIFY --run RUN --bn recompute   --examples 256 --alphas 21 --loss-only --no-figures
# (recompute's reference batch: the same 256 images, --bn-reference's default),
# then prints per run `certify table RUN --variants --cols variant`: the study's
# own report (variant = run: interpolate on 25 examples), bn=recompute_examples=25_…
# (bn-recompute.sh) and the two analyses on 256 (256 is the run's default
# example count, so their names do not mention it: alphas=21_loss-only and
# bn=recompute_alphas=21_loss-only). POLICIES (default "interpolate recompute")
# limits the analyses run; the tables show whatever exists.
set -eu
certify=$1
runs=$2
shift 2
for name in "$@"; do
	run=$runs/$name
	for bn in ${POLICIES-interpolate recompute}; do
		v=alphas=21_loss-only
		[ "$bn" = recompute ] && v=bn=recompute_$v
		if [ ! -f "$run/variants/$v/variant.json" ]; then
			/usr/bin/time -f "$run --bn $bn --examples 256: %U s user %S s system" \
				"$certify" --run "$run" --bn "$bn" --examples 256 --alphas 21 --loss-only --no-figures --quiet >&2
		fi
	done
	echo "$name:"
	echo
	"$certify" table "$run" --variants --rows optim,arch,lr,seed --cols variant --format markdown
	echo
done
