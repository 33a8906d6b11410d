#!/usr/bin/env bash
# deps.sh installs what Hermes-Go's make targets need and the machine lacks.
# Usage: scripts/deps.sh GROUP...
#   data  the Fashion-MNIST data set (Debian package dataset-fashion-mnist)
#   nats  an external NATS server (Debian nats-server) for the cluster tests
#   peer  PyTorch and OpenBLAS for 'hermes bench engine --peer'
#   browser  Chromium, headless, for the dashboard's browser test
#   ort   Node.js and onnxruntime-node (npm, into scripts/ort) for the check
#         of the ONNX export by a real runtime
#   qemu  qemu-user-static, to run the arm64 build's tests on this machine
# Go itself must be installed (https://go.dev/doc/install); go fetches the
# Go modules on first build.
set -euo pipefail

need=()
for want in "$@"; do
	case "$want" in
	data)
		[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
		;;
	nats)
		command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
		;;
	browser)
		[ -x /usr/bin/chromium ] || need+=(chromium)
		;;
	peer)
		/usr/bin/python3 -c 'import torch' 2>/dev/null || need+=(python3-torch)
		ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas* >/dev/null 2>&1 ||
			ls /usr/lib/*/openblas-pthread/libopenblas* >/dev/null 2>&1 || need+=(libopenblas0-pthread)
		;;
	ort)
		command -v node >/dev/null || need+=(nodejs)
		command -v npm >/dev/null || need+=(npm)
		;;
	qemu)
		command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
		;;
	*)
		echo "deps.sh: unknown dependency group $want (want data, nats, browser, peer, ort or qemu)" >&2
		exit 2
		;;
	esac
done
# npm packages go into the repository's scripts/ort, after the Debian ones.
ort_modules() {
	for want in "$@"; do
		if [ "$want" = ort ] && [ ! -d "$(dirname "$0")/ort/node_modules/onnxruntime-node" ]; then
			echo "deps.sh: installing onnxruntime-node (npm) into scripts/ort" >&2
			# --ignore-scripts: the package ships its CPU runtime; its install
			# script only fetches GPU providers, from hosts outside npm.
			(cd "$(dirname "$0")/ort" && npm ci --ignore-scripts --no-audit --no-fund)
		fi
	done
}
if [ ${#need[@]} -eq 0 ]; then
	ort_modules "$@"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${need[*]}" >&2; exit 1; }
	sudo="sudo"
fi
echo "deps.sh: installing ${need[*]}" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
ort_modules "$@"
