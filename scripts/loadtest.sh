#!/usr/bin/env bash
# loadtest.sh measures the parameter server under load: for each policy
# (asp, hermes) and N in 10, 100, 1000, a `hermes ps` on the test fixture
# (logistic regression) and `hermes loadtest` with N synthetic workers at
# 2 updates/s each for 10 s. Run from the repository root after `make build`.
set -euo pipefail
F=testdata/fmnist-1k-images-idx3-ubyte.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=4400
for policy in asp hermes; do
	for n in 10 100 1000; do
		port=$((port + 1))
		./hermes ps --train $F --test $F --model logreg --val 200 --chunk 64 --min-chunk 32 --policy $policy \
			--target 0 --patience 100000000 --listen 127.0.0.1:$port --run-dir "$tmp/run-$policy-$n" \
			--worker-timeout 30s --json >"$tmp/ps.json" 2>"$tmp/ps.err" &
		pid=$!
		sleep 2
		printf '%s N=%s: ' "$policy" "$n"
		./hermes loadtest --ps nats://127.0.0.1:$port --workers "$n" --rate 2 --duration 10s --ps-pid $pid
		kill -TERM $pid
		wait $pid
	done
done
