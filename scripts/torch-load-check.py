"""Load a model that hermes trained into PyTorch and evaluate it there.

Usage: /usr/bin/python3 scripts/torch-load-check.py MODEL.safetensors TORCH.safetensors

MODEL is a model saved by hermes (its spec is in the metadata); TORCH is
`hermes export --model-file MODEL --torch-names TORCH`. Builds the
equivalent torch.nn.Sequential from the spec, loads TORCH with
load_state_dict(strict=True), and prints its Fashion-MNIST test accuracy,
which must equal `hermes eval --model-file MODEL`'s. Needs python3-torch.
"""
import gzip, json, struct, sys
import numpy as np
import torch, torch.nn as nn

def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for k, e in header.items():
        lo, hi = e["data_offsets"]
        a = np.frombuffer(data[lo:hi], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
        tensors[k] = torch.from_numpy(a.copy())
    return meta, tensors

meta, _ = read_st(sys.argv[1])
_, sd = read_st(sys.argv[2])
spec = json.loads(meta["hermes.spec"])
shape = json.loads(meta["hermes.input"])
mods, cur = [], list(shape)
for l in spec["layers"]:
    t = l["type"]
    if t == "dense":
        mods.append(nn.Linear(cur[0], l["units"])); cur = [l["units"]]
    elif t == "conv2d":
        k, s, p = l["kernel"], l.get("stride", 1) or 1, l.get("padding", 0)
        mods.append(nn.Conv2d(cur[0], l["filters"], k, stride=s, padding=p))
        cur = [l["filters"], (cur[1] + 2 * p - k) // s + 1, (cur[2] + 2 * p - k) // s + 1]
    elif t in ("maxpool2d", "avgpool2d"):
        k = l["size"]; s = l.get("stride", 0) or k
        mods.append((nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d)(k, s))
        cur = [cur[0], (cur[1] - k) // s + 1, (cur[2] - k) // s + 1]
    elif t == "globalavgpool":
        mods.append(nn.AdaptiveAvgPool2d(1)); cur = [cur[0], 1, 1]
    elif t == "batchnorm":
        mods.append((nn.BatchNorm2d if len(cur) == 3 else nn.BatchNorm1d)(cur[0], eps=l.get("eps", 1e-5) or 1e-5))
    elif t == "flatten":
        mods.append(nn.Flatten()); cur = [int(np.prod(cur))]
    elif t in ("relu", "tanh", "sigmoid"):
        mods.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[t]())
    elif t == "leakyrelu":
        mods.append(nn.LeakyReLU(l.get("alpha", 0.01) or 0.01))
    elif t == "dropout":
        mods.append(nn.Dropout(l.get("rate", 0)))
    if l.get("activation") == "relu":
        mods.append(nn.ReLU())
net = nn.Sequential(*mods)
net.load_state_dict(sd, strict=True)
net.eval()

root = "/usr/share/datasets/fashion-mnist/"
def idx(name):
    b = gzip.open(root + name).read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
mean, std = float(meta.get("hermes.norm.mean", "0")), float(meta.get("hermes.norm.std", "1"))
x = (torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1) - mean) / std
y = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
with torch.no_grad():
    acc = (net(x).argmax(1) == y).float().mean().item()
print(json.dumps({"torch_test_accuracy": round(acc, 4), "modules": len(mods)}))
