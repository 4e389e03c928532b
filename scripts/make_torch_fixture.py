#!/usr/bin/env python3
"""Writes the PyTorch reference fixture that tests/io_torch_fixture.rs checks gradflow against.

    python3 -m venv /tmp/gradflow-venv
    /tmp/gradflow-venv/bin/pip install torch safetensors
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py

builds nn.Sequential(Linear(4, 5), Tanh(), Linear(5, 3)) in float64 with a fixed seed, runs it
on a fixed 4-row input, backpropagates loss = (out * R).sum() for a fixed R (so that
dL/d(out) = R), and writes

    tests/fixtures/torch_mlp.safetensors           model.state_dict(), via safetensors.torch.save_file
    tests/fixtures/torch_mlp_expected.safetensors  input, R, output, loss and every gradient:
        "input" (4, 4), "grad_output" (4, 3) = R, "output" (4, 3), "loss" (),
        "grad.input" (4, 4), "grad.0.weight" (5, 4), "grad.0.bias" (5),
        "grad.2.weight" (3, 5), "grad.2.bias" (3)

cargo test does not need this script: the two small files are committed.

The reverse direction (gradflow -> PyTorch): given a state file written by gradflow's
`save_safetensors` for this architecture (for example by running the Rust test with
GRADFLOW_TORCH_RESAVE=/tmp/resaved.safetensors), `--check FILE` loads it into the PyTorch model
with load_state_dict(strict=True) and compares its output and gradients with the fixture:

    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --check /tmp/resaved.safetensors
"""

import argparse
import pathlib
import sys

import torch
from safetensors.torch import load_file, save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SEED = 20240607


def build_model() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).to(torch.float64)


def run(model, x, r):
    x = x.clone().requires_grad_(True)
    model.zero_grad()
    out = model(x)
    loss = (out * r).sum()
    loss.backward()
    result = {"output": out.detach(), "loss": loss.detach(), "grad.input": x.grad.detach()}
    for name, p in model.named_parameters():
        result["grad." + name] = p.grad.detach()
    return result


def make():
    torch.manual_seed(SEED)
    model = build_model()
    x = torch.randn(4, 4, dtype=torch.float64)
    r = torch.randn(4, 3, dtype=torch.float64)
    result = run(model, x, r)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(FIXTURES / "torch_mlp.safetensors"))
    expected = {"input": x, "grad_output": r, **result}
    save_file({k: v.contiguous() for k, v in expected.items()}, str(FIXTURES / "torch_mlp_expected.safetensors"))
    print(f"torch {torch.__version__}: wrote {FIXTURES / 'torch_mlp.safetensors'} "
          f"and {FIXTURES / 'torch_mlp_expected.safetensors'}")
    for k, v in expected.items():
        print(f"  {k}: {tuple(v.shape)}")


def check(path: str) -> int:
    model = build_model()
    model.load_state_dict(load_file(path), strict=True)
    expected = load_file(str(FIXTURES / "torch_mlp_expected.safetensors"))
    result = run(model, expected["input"], expected["grad_output"])
    worst = 0.0
    for name, value in result.items():
        diff = (value - expected[name]).abs().max().item()
        worst = max(worst, diff)
        print(f"  {name}: max |difference| = {diff:.3e}")
    ok = worst <= 1e-10
    print(("OK" if ok else "FAILED") + f": {path} loads into PyTorch (strict) and reproduces the fixture "
          f"(max difference {worst:.3e})")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="FILE", help="load a gradflow-written state into PyTorch and compare")
    args = parser.parse_args()
    sys.exit(check(args.check) if args.check else make())
