"""Make the ONNX fixtures of Hermes-Go's import tests with PyTorch.

Usage: /usr/bin/python3 scripts/onnx-fixtures.py [OUTDIR]   (make onnx-fixtures; OUTDIR: nn/onnx/testdata)

Writes OUTDIR/{mlp,cnn,bncnn}.onnx, torch.onnx.export of the MLP and CNN of
the engine peer (../shared/peers/torch_engine.py) and of a third model with
batch normalization, leaky ReLU and average pooling, each at another opset,
and OUTDIR/NAME.json with fixed inputs (NCHW, as ToTensor gives them) and
PyTorch's outputs for them in evaluation mode. Needs Debian python3-torch.
"""
import json, os, sys
import torch, torch.nn as nn

out = sys.argv[1] if len(sys.argv) > 1 else "nn/onnx/testdata"
os.makedirs(out, exist_ok=True)
torch.manual_seed(1)

def bncnn():
    # Batch normalization right behind a convolution would be folded into
    # it by the export (in evaluation mode), so it sits behind activations.
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.BatchNorm2d(16), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 24), nn.BatchNorm1d(24),
        nn.Tanh(), nn.Linear(24, 10), nn.LogSoftmax(dim=1))

models = {
    # name: (model, input shape per sample, opset)
    "mlp": (nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)), (784,), 11),
    "cnn": (nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10)),
            (1, 28, 28), 13),
    "bncnn": (bncnn(), (1, 28, 28), 17),
}

for name, (net, shape, opset) in models.items():
    if name == "bncnn":
        # Running statistics away from their initial 0 and 1, so that the
        # test sees them used.
        net.train()
        with torch.no_grad():
            for _ in range(5):
                net(torch.rand(32, *shape) * 2)
    net.eval()
    x = torch.rand(4, *shape)
    with torch.no_grad():
        y = net(x)
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(net, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump({"opset": opset, "shape": list(shape), "input": x.flatten().tolist(),
                   "output": y.flatten().tolist()}, f)
    print(f"{path}: opset {opset}, {sum(p.numel() for p in net.parameters())} parameters")
