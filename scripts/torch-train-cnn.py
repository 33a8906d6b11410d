"""Train the engine peer's CNN in PyTorch on Fashion-MNIST and export it to ONNX.

Usage: /usr/bin/python3 scripts/torch-train-cnn.py OUT.onnx [EPOCHS]

The check that a model designed and trained in PyTorch comes into Hermes
intact: `hermes eval --model-file OUT.onnx --dataset fashion-mnist` must
give the test accuracy printed here. Inputs are ToTensor's (bytes / 255,
NCHW), no normalization. Needs python3-torch and dataset-fashion-mnist.
"""
import gzip, json, sys, time
import numpy as np
import torch, torch.nn as nn

out = sys.argv[1]
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
root = "/usr/share/datasets/fashion-mnist/"
torch.manual_seed(1)

def idx(name):
    with gzip.open(root + name) as f:
        b = f.read()
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

xtr = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
xte = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))

net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
lossf = nn.CrossEntropyLoss()
t0 = time.time()
for epoch in range(epochs):
    net.train()
    perm = torch.randperm(len(ytr))
    for i in range(0, len(ytr), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        lossf(net(xtr[b]), ytr[b]).backward()
        opt.step()
net.eval()
with torch.no_grad():
    logits = torch.cat([net(xte[i:i + 1000]) for i in range(0, len(yte), 1000)])
acc = (logits.argmax(1) == yte).float().mean().item()
loss = lossf(logits, yte).item()
torch.onnx.export(net, xte[:1], out, opset_version=13, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
print(json.dumps({"onnx": out, "epochs": epochs, "torch_test_accuracy": round(acc, 4),
                  "torch_test_loss": round(loss, 4), "train_seconds": round(time.time() - t0, 1)}))
