#!/usr/bin/env bash
# demo-vs-sim.sh runs the same setting as real processes and simulated:
# `hermes demo --policy P` RUNS times per policy (4 workers slowed 1, 2, 4
# and 8 times on this machine) and `hermes bench --scenario
# scenarios/demo-4.json` over as many seeds, and prints each policy's median
# time to target relative to hermes in both (the demo's from its first
# chunk, as the simulation's devices all join at 0). Run from the repository root
# after `make build`, on an otherwise idle machine.
set -euo pipefail
policies=${POLICIES:-hermes localsgd asp bsp}
runs=${RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -m1 'model name' /proc/cpuinfo || true
for p in $policies; do
	for i in $(seq "$runs"); do
		./hermes demo --policy "$p" --run-dir "$tmp/run-$p-$i" --json 2>/dev/null | tail -1 >"$tmp/demo-$p-$i.json"
	done
done
./hermes bench --scenario scenarios/demo-4.json --policies "$(echo $policies | tr ' ' ,)" --seeds "$runs" --json 2>/dev/null |
	tail -1 >"$tmp/sim.json"
printf '| policy | demo: median s (runs) | demo / hermes [95%%] | sim: median s | sim / hermes [95%%] | agree within |\n| --- | ---: | ---: | ---: | ---: | ---: |\n'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# A missed target counts as infinitely slow (1e9 s), as bench's medians do.
demo_times() { cat "$tmp"/demo-$1-*.json | jq -r 'if .reached_target then .train_seconds else 1e9 end' | paste -sd' '; }
sim_times() { jq -r --arg p "$1" '.results[] | select(.policy==$p) | .per_seed[] | .time_to_target_s // 1e9' "$tmp/sim.json" | paste -sd' '; }
# ratio_ci prints the 95% bootstrap interval of median(a)/median(b), the
# two samples resampled independently (2,000 times, seeded).
ratio_ci() {
	awk -v a="$1" -v b="$2" 'function sort(x, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j-1] > x[j]; j--) { t = x[j]; x[j] = x[j-1]; x[j-1] = t }
		}
		function med(x, n) { sort(x, n); return n % 2 ? x[(n+1)/2] : (x[n/2] + x[n/2+1]) / 2 }
		BEGIN {
			srand(1); na = split(a, A, " "); nb = split(b, B, " ")
			for (r = 1; r <= 2000; r++) {
				for (i = 1; i <= na; i++) X[i] = A[int(rand() * na) + 1]
				for (i = 1; i <= nb; i++) Y[i] = B[int(rand() * nb) + 1]
				R[r] = med(X, na) / med(Y, nb)
			}
			sort(R, 2000)
			printf "%.2f %.2f", R[51], R[1950]
		}'
}
demo_h=$(demo_times hermes | tr ' ' '\n' | median)
sim_h=$(jq -r '.results[] | select(.policy=="hermes") | .time_to_target_s' "$tmp/sim.json")
for p in $policies; do
	all=$(cat "$tmp"/demo-$p-*.json | jq -r 'if .reached_target then .train_seconds * 100 | round / 100 else "inf" end' | paste -sd, | sed 's/,/, /g')
	d=$(demo_times "$p" | tr ' ' '\n' | median)
	s=$(jq -r --arg p "$p" '.results[] | select(.policy==$p) | .time_to_target_s' "$tmp/sim.json")
	dci=$(ratio_ci "$(demo_times "$p")" "$(demo_times hermes)")
	sci=$(ratio_ci "$(sim_times "$p")" "$(sim_times hermes)")
	awk -v p="$p" -v d="$d" -v dh="$demo_h" -v s="$s" -v sh="$sim_h" -v all="$all" -v dci="$dci" -v sci="$sci" 'BEGIN {
		dr = d / dh; sr = s / sh; off = (sr > dr ? sr / dr : dr / sr) - 1
		split(dci, D, " "); split(sci, S, " ")
		printf "| %s | %.1f (%s) | %.2fx [%.2f, %.2f] | %.1f | %.2fx [%.2f, %.2f] | %.0f%% |\n", p, d, all, dr, D[1], D[2], s, sr, S[1], S[2], 100 * off }'
done
