"""Records the PyTorch fixtures that gradflow's tests diagnose (tests/fixtures/torch_run_*.jsonl).

A 20-layer plain tanh MLP (width 64, PyTorch's default init) and its residual twin (20 blocks
x + W_b·tanh(W_a·x)) — the networks of gradflow's `resnet_vs_plain` example — trained with plain
SGD (lr 0.05, batch 32) on the 8×8 digits for 150 steps, every 50th recorded with
gradflow_torch.Recorder (the loss of every step).

    python python/examples/record_fixture.py            # writes tests/fixtures/torch_run_{plain,residual}.jsonl
    python python/examples/record_fixture.py --out DIR --steps 150 --every 50

Runs in a few seconds on a CPU. Needs torch and gradflow_torch (pip install ./python, or run
from the repository: the script adds python/ to the path).
"""

import argparse
import csv
import gzip
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from gradflow_torch import Recorder  # noqa: E402


class ResidualBlock(nn.Module):
    """x + W_b·act(W_a·x), as gradflow's `SequentialBuilder::residual_block`."""

    def __init__(self, width, activation):
        super().__init__()
        self.fc_a = nn.Linear(width, width)
        self.act = activation()
        self.fc_b = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc_b(self.act(self.fc_a(x)))


def plain(depth, width, inputs, classes, activation=nn.Tanh):
    layers = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else width, width), activation()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def residual(depth, width, inputs, classes, activation=nn.Tanh):
    assert inputs == width, "the residual twin keeps the input width (64 for the digits)"
    return nn.Sequential(*[ResidualBlock(width, activation) for _ in range(depth)], nn.Linear(width, classes))


def digits(path):
    """The 8×8 digits: inputs scaled to [0, 1] (pixels / 16, as gradflow) and labels."""
    with gzip.open(path, "rt") as f:
        rows = list(csv.reader(f))[1:]
    x = torch.tensor([[float(v) / 16.0 for v in r[:64]] for r in rows], dtype=torch.float32)
    y = torch.tensor([int(r[64]) for r in rows])
    return x, y


def record(model, x, y, path, steps, every, lr, batch, seed):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    with Recorder(model, path, every_n_steps=every) as recorder:
        order = torch.randperm(len(x), generator=generator)
        for step in range(steps):
            start = (step * batch) % (len(x) - batch)
            idx = order[start : start + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            recorder.end_step(loss)
            optimizer.step()
    return loss.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures"))
    parser.add_argument("--data", default=os.path.join(REPO, "data", "digits.csv.gz"))
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=50, help="record every this many steps")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    x, y = digits(args.data)
    for name, build in (("plain", plain), ("residual", residual)):
        torch.manual_seed(args.seed)
        model = build(args.depth, args.width, x.shape[1], 10)
        path = os.path.join(args.out, f"torch_run_{name}.jsonl")
        last = record(model, x, y, path, args.steps, args.every, args.lr, args.batch, args.seed)
        print(f"{name:8}  last loss {last:.4f}  ->  {path} ({os.path.getsize(path):,} bytes)")


if __name__ == "__main__":
    main()
