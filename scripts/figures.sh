#!/usr/bin/env bash
# figures.sh makes the README's evaluation figures from the code as it is:
# the policies on edge-8 and on the scenarios where Hermes's mechanisms
# should matter, over 5 seeds; the ablations of every mechanism of hermes
# over 5 seeds on three scenarios; and the scale runs (wall time and peak
# RSS). Run from the repository root after `make build`; reports go to
# ${OUT:-/tmp/hermes-figures}. Each part can be run alone:
# figures.sh [policies|scenarios|ablations|scale]...
set -euo pipefail
out=${OUT:-/tmp/hermes-figures}
mkdir -p "$out"
grep -m1 'model name' /proc/cpuinfo || true
parts=${*:-policies scenarios ablations scale}
# fedasync-zstd is FedAsync with Hermes's chunk compression: a reference
# row that shows how much of a gap is the codec's.
all=hermes,hermes-paper,localsgd,fedbuff,fedasync,asp,ssp,bsp,fedasync-zstd
# The ablations undo one mechanism of hermes each, on three scenarios; the
# candidates (changes measured and not kept) run on edge-8 only.
ablations=hermes,hermes-paper,hermes-gup,hermes-lossaware,hermes-nostale,hermes-raw,hermes-noalloc,hermes-whole
candidates=hermes-mean,hermes-gain,hermes-eager,hermes-testfirst,hermes-deadline,hermes-aim,hermes-speed
for part in $parts; do
	case $part in
	policies)
		./hermes bench --scenario ../shared/scenarios/edge-8.json --policies $all --seeds 5 --out "$out/edge-8"
		;;
	scenarios)
		for sc in scenarios/stragglers-10.json scenarios/cellular-8.json scenarios/cnn-hetero-6.json; do
			./hermes bench --scenario "$sc" --policies $all --seeds 5 --out "$out/$(basename "$sc" .json)"
		done
		;;
	ablations)
		for sc in ../shared/scenarios/edge-8.json scenarios/edge-8-088.json scenarios/edge-8-faults.json; do
			name=$(basename "$sc" .json)
			policies=$ablations
			if [ "$name" = edge-8 ]; then policies=$ablations,$candidates; fi
			./hermes bench --scenario "$sc" --policies "$policies" --seeds 5 --out "$out/ablation-$name"
		done
		;;
	scale)
		for n in 1000 10000 100000; do
			jq --argjson n $n '.name = "scale-\($n)" | .workers |= map(.count = (.count * $n / 1000))' \
				scenarios/scale-1000.json >"$out/scale-$n.json"
			/usr/bin/time -v ./hermes sim --scenario "$out/scale-$n.json" 2>"$out/scale-$n.time" | tee "$out/scale-$n.txt"
			grep -E 'Elapsed|Maximum resident' "$out/scale-$n.time"
		done
		;;
	*)
		echo "figures.sh: unknown part $part (policies, scenarios, ablations, scale)" >&2
		exit 1
		;;
	esac
done
