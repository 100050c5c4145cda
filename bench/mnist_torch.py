"""PyTorch side of the end-to-end MNIST benchmark: the same network, data, recipe and
evaluation as examples/mnist.c (tenflower's `make demo`), written as a PyTorch user would
without torchvision (not packaged here): IDX files read with numpy, normalised like
torchvision's ToTensor + Normalize((0.1307,), (0.3081,)), shuffled batches of 64, AdamW
(weight decay 0.01 on weights, none on biases) with OneCycleLR (max lr 6e-3, pct_start
0.25), label smoothing 0.1 in training, evaluation on the 10k test images in batches of 64.

    mnist_torch.py DATA_DIR [--epochs N] [--threads N] [--limit N]

Prints one JSON line: {"accuracy", "loss", "train_s", "total_s"} (bench/run.py adds the
process's peak RSS)."""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


def load(d, split, limit):
    img = read_idx(os.path.join(d, "%s-images-idx3-ubyte" % split))
    lab = read_idx(os.path.join(d, "%s-labels-idx1-ubyte" % split))
    if limit:
        img, lab = img[:limit], lab[:limit]
    x = torch.from_numpy(img.astype(np.float32) / 255.0)
    x = ((x - 0.1307) / 0.3081).unsqueeze(1)
    return x, torch.from_numpy(lab.astype(np.int64))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    t0 = time.time()
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "t10k", a.limit)
    model = Net()
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=6e-3)
    steps_per_epoch = (len(xtr) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=6e-3, pct_start=0.25,
                                                total_steps=a.epochs * steps_per_epoch)
    t1 = time.time()
    for _ in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for b in range(steps_per_epoch):
            idx = perm[b * 64:(b + 1) * 64]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx], label_smoothing=0.1)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        correct, total_loss = 0, 0.0
        with torch.no_grad():
            for b in range(0, len(xte), 64):
                out = model(xte[b:b + 64])
                total_loss += F.cross_entropy(out, yte[b:b + 64], reduction="sum").item()
                correct += (out.argmax(1) == yte[b:b + 64]).sum().item()
    t2 = time.time()
    print(json.dumps({"accuracy": correct / len(xte), "loss": total_loss / len(xte),
                      "train_s": t2 - t1, "total_s": t2 - t0}), flush=True)


if __name__ == "__main__":
    main()
