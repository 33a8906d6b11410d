#!/usr/bin/env bash
# calibrate-demo.sh measures this machine with `hermes calibrate` and writes
# scenarios/demo-4.json: what `hermes demo` runs (four workers slowed 1, 2,
# 4 and 8 times, and the server, on this machine over loopback) as a
# simulation. A worker slowed s times sleeps (s-1) times its training's CPU
# time, so its FLOP rate is divided by s and its step times multiplied by s;
# message costs are the machine's, unslowed. The server and the workers
# share this machine's cores (host_cores); a slowed worker holds a core only
# for the 1/s of its training time it computes. Run from the repository root
# after `make build`, on an otherwise idle machine.
set -euo pipefail
# The machine is shared and noisy: each figure is the median of three
# calibrations.
cal=$(for i in 1 2 3; do ./hermes calibrate --model mlp --json | tail -1; done |
	jq -s '. as $all | {device: (($all[0].device | keys - ["step_times"] | map(. as $f |
		{key: $f, value: ([$all[].device[$f]] | sort | .[1])}) | from_entries) +
		{step_times: [$all[0].device.step_times | keys[] as $i |
			{batch: $all[0].device.step_times[$i].batch, ms: ([$all[].device.step_times[$i].ms] | sort | .[1])}]})}')
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
jq --arg cpu "$cpu" --argjson cores "$(nproc)" '.device as $d | {
	name: "demo-4",
	description: ("What `hermes demo` runs, as a simulation: four workers slowed down 1, 2, 4 and 8 times and the server, on one machine of \($cores) cores over loopback; Fashion-MNIST MLP to 85% test accuracy. Device costs measured by `hermes calibrate` (scripts/calibrate-demo.sh) on " + $cpu + ": " + ($d.step_times | map(select(.batch == 16))[0].ms | tostring) + " ms a step at mini-batch 16 (step_times; gflops " + ($d.gflops|tostring) + " for the server), " + ($d.msg_cpu_ms|tostring) + " ms + " + ($d.msg_cpu_ns_per_byte|tostring) + " ns/byte per message end."),
	dataset: "fashion-mnist", model: "mlp", target_accuracy: 0.85, time_budget_s: 1800, seed: 1, host_cores: $cores,
	ps: {gflops: $d.gflops, bandwidth_mbps: 8000, latency_ms: 0.05, msg_cpu_ms: $d.msg_cpu_ms, msg_cpu_ns_per_byte: $d.msg_cpu_ns_per_byte},
	workers: [1, 2, 4, 8] | map(. as $s | {name: "x\($s)", count: 1, gflops: ($d.gflops / $s), bandwidth_mbps: 8000, latency_ms: 0.05,
		step_overhead_ms: ($d.step_overhead_ms * $s),
		step_times: ($d.step_times | map(.ms = ((.ms * $s * 1e6 | round) / 1e6))), slowdown: $s, msg_cpu_ms: $d.msg_cpu_ms, msg_cpu_ns_per_byte: $d.msg_cpu_ns_per_byte})
}' <<<"$cal" >scenarios/demo-4.json
echo "wrote scenarios/demo-4.json"
