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
printf '| policy | demo: median s (runs) | demo / hermes | sim: median s | sim / hermes | agree within |\n| --- | ---: | ---: | ---: | ---: | ---: |\n'
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
demo_h=$(cat "$tmp"/demo-hermes-*.json | jq -r 'if .reached_target then .train_seconds else "inf" end' | median)
sim_h=$(jq -r '.results[] | select(.policy=="hermes") | .time_to_target_s' "$tmp/sim.json")
for p in $policies; do
	all=$(cat "$tmp"/demo-$p-*.json | jq -r 'if .reached_target then .train_seconds * 100 | round / 100 else "inf" end' | paste -sd, | sed 's/,/, /g')
	d=$(cat "$tmp"/demo-$p-*.json | jq -r 'if .reached_target then .train_seconds else "inf" end' | median)
	s=$(jq -r --arg p "$p" '.results[] | select(.policy==$p) | .time_to_target_s' "$tmp/sim.json")
	awk -v p="$p" -v d="$d" -v dh="$demo_h" -v s="$s" -v sh="$sim_h" -v all="$all" 'BEGIN {
		dr = d / dh; sr = s / sh; off = (sr > dr ? sr / dr : dr / sr) - 1
		printf "| %s | %.1f (%s) | %.2fx | %.1f | %.2fx | %.0f%% |\n", p, d, all, dr, s, sr, 100 * off }'
done
