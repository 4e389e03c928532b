"""Record a PyTorch training run for gradflow's doctor — the workflow of the README's
"Diagnosing a PyTorch run", on a small deep tanh MLP and random data:

    python python/examples/quickstart.py run.jsonl
    cargo run --bin gradflow -- diagnose run.jsonl
"""

import argparse
import os
import sys

try:
    import gradflow_torch  # noqa: F401
except ImportError:  # run from the repository without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
from torch import nn

from gradflow_torch import Recorder


def main():
    parser = argparse.ArgumentParser(description="Record a small PyTorch run for `gradflow diagnose`.")
    parser.add_argument("out", help="the recording to write (JSON lines)")
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    layers = []
    for _ in range(args.depth):
        layers += [nn.Linear(32, 32), nn.Tanh()]
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), *layers, nn.Linear(32, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(256, 16), torch.randint(0, 4, (256,))

    recorder = Recorder(model, args.out, every_n_steps=5)
    for step in range(args.steps):
        batch = slice((step * 32) % 224, (step * 32) % 224 + 32)
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        recorder.end_step(loss)  # after backward, before the optimizer step
        optimizer.step()
    recorder.close()
    print(f"recorded {args.steps} steps of a {args.depth + 2}-layer tanh MLP into {args.out}")


if __name__ == "__main__":
    main()
