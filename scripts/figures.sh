#!/usr/bin/env bash
# figures.sh makes the README's evaluation figures from the code as it is:
# the policies on edge-8 over 5 seeds, the ablations over 5 seeds on three
# scenarios, and the scale runs (wall time and peak RSS). Run from the
# repository root after `make build`; reports go to ${OUT:-/tmp/hermes-figures}.
# Each part can be run alone: figures.sh [policies|ablations|scale]...
set -euo pipefail
out=${OUT:-/tmp/hermes-figures}
mkdir -p "$out"
grep -m1 'model name' /proc/cpuinfo || true
parts=${*:-policies ablations scale}
for part in $parts; do
	case $part in
	policies)
		./hermes bench --scenario ../shared/scenarios/edge-8.json \
			--policies hermes,localsgd,fedbuff,fedasync,asp,ssp,bsp --seeds 5 --out "$out/edge-8"
		;;
	ablations)
		for sc in scenarios/edge-8-088.json ../shared/scenarios/edge-8.json scenarios/edge-8-faults.json; do
			name=$(basename "$sc" .json)
			./hermes bench --scenario "$sc" --policies hermes,hermes-nogup,hermes-noalloc,hermes-mean \
				--seeds 5 --out "$out/ablation-$name"
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
		echo "figures.sh: unknown part $part (policies, ablations, scale)" >&2
		exit 1
		;;
	esac
done
