#!/usr/bin/env bash
# onnx-pytorch-check.sh: a CNN defined and trained in PyTorch, exported to
# ONNX, evaluated by hermes: the two test accuracies must agree within 0.002.
# Then hermes trains it one epoch further, and PyTorch loads the result by
# state_dict names (scripts/torch-load-check.py) to the same accuracy.
# Needs python3-torch (make deps-peer).
# Usage: scripts/onnx-pytorch-check.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/onnx-pytorch}
mkdir -p "$out"
go build -o hermes ./cmd/hermes
torch=$(/usr/bin/python3 scripts/torch-train-cnn.py "$out/cnn.onnx" 1 2>/dev/null | tail -1)
echo "pytorch: $torch"
ours=$(./hermes eval --model-file "$out/cnn.onnx" --dataset fashion-mnist --json | tail -1)
echo "hermes:  $ours"
python3 - "$torch" "$ours" <<'PY'
import json, sys
t, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = abs(t["torch_test_accuracy"] - h["test_accuracy"])
print(f"accuracy: pytorch {t['torch_test_accuracy']:.4f}, hermes {h['test_accuracy']:.4f}, difference {d:.4f} (bound 0.002)")
sys.exit(0 if d <= 0.002 else 1)
PY
# And back: a model hermes trained, loaded into PyTorch by state_dict names.
./hermes train --model "$out/cnn.onnx" --dataset fashion-mnist --epochs 1 --lr 0.0001 \
	--save "$out/cnn-continued.safetensors" --json | tail -1
./hermes export --model-file "$out/cnn-continued.safetensors" --torch-names "$out/torch.safetensors"
./hermes eval --model-file "$out/cnn-continued.safetensors" --dataset fashion-mnist --json | tail -1
/usr/bin/python3 scripts/torch-load-check.py "$out/cnn-continued.safetensors" "$out/torch.safetensors"
