#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that tests/io_torch_fixture.rs checks gradflow against.

    python3 -m venv /tmp/gradflow-venv
    /tmp/gradflow-venv/bin/pip install torch safetensors
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py

Every model is built in float64 from a fixed seed, run on a fixed input, and backpropagated from
loss = (out * R).sum() for a fixed R (so that dL/d(out) = R). The state is written with
safetensors.torch.save_file(model.state_dict(), ...) and the expected values to a second file.

mlp: nn.Sequential(Linear(4, 5), Tanh(), Linear(5, 3))
    tests/fixtures/torch_mlp.safetensors           the state_dict
    tests/fixtures/torch_mlp_expected.safetensors  input, R, output, loss and every gradient:
        "input" (4, 4), "grad_output" (4, 3) = R, "output" (4, 3), "loss" (),
        "grad.input" (4, 4), "grad.0.weight" (5, 4), "grad.0.bias" (5),
        "grad.2.weight" (3, 5), "grad.2.bias" (3)

bn_mlp: nn.Sequential(Linear(4, 6), BatchNorm1d(6), Tanh(), Linear(6, 3)), with the BatchNorm's
    weight and bias drawn at random (not PyTorch's 1 and 0, so that swapping them would show) and
    its running statistics moved by two training-mode forward passes on random batches of 8
    (num_batches_tracked = 2). Then, on a 5-row input, first in eval mode, then in train mode:
    tests/fixtures/torch_bn_mlp.safetensors            the state_dict after the two passes:
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked" (I64, shape []), "3.weight", "3.bias"
    tests/fixtures/torch_bn_mlp_expected.safetensors   "input" (5, 4), "grad_output" (5, 3) = R,
        and for MODE in eval, train: "MODE.output", "MODE.loss", "MODE.grad.input",
        "MODE.grad.<parameter>" for each parameter, and "MODE.buffer.1.running_mean",
        "MODE.buffer.1.running_var", "MODE.buffer.1.num_batches_tracked" (as F64) after that
        mode's pass (eval leaves them as loaded; train moves them once more and counts 3).

lstm: a module with self.rnn = nn.LSTM(3, 4) and self.head = nn.Linear(4, 2) returning
    head(rnn(x)[0][-1]) for x of shape (time 5, batch 2, 3) (PyTorch's batch_first=False):
    tests/fixtures/torch_lstm_head.safetensors     its state_dict: "rnn.weight_ih_l0" (16, 3),
        "rnn.weight_hh_l0" (16, 4), "rnn.bias_ih_l0" (16), "rnn.bias_hh_l0" (16), "head.weight" (2, 4),
        "head.bias" (2) — the names of gradflow's SequenceModel
    tests/fixtures/torch_lstm.safetensors          the bare nn.LSTM's own state_dict
        ("weight_ih_l0", ... without a prefix) — the names of gradflow's SequenceLayer
    tests/fixtures/torch_lstm_head_expected.safetensors  "input" (5, 2, 3), "grad_output" (2, 2) = R,
        "output" (2, 2), "loss" (), "grad.input" (5, 2, 3), "grad.<parameter>" for each parameter

cargo test does not need this script: the small files are committed. Running it again with the
same torch writes byte-identical files.

The reverse direction (gradflow -> PyTorch): given a state file written by gradflow's
`save_safetensors` for one of these architectures (the Rust tests write them when
GRADFLOW_TORCH_RESAVE is set to a directory), `--check FILE --model NAME` loads it into the
PyTorch model with load_state_dict(strict=True) and compares its outputs and gradients with
the fixture:

    GRADFLOW_TORCH_RESAVE=/tmp/resaved cargo test --test io_torch_fixture
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --check /tmp/resaved/torch_mlp.safetensors
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --model bn_mlp --check /tmp/resaved/torch_bn_mlp.safetensors
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --model lstm --check /tmp/resaved/torch_lstm_head.safetensors
"""

import argparse
import pathlib
import sys

import torch
from safetensors.torch import load_file, save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SEED = 20240607
BN_SEED = SEED + 1
LSTM_SEED = SEED + 2


def build_model() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)
    ).to(torch.float64)


def build_bn_model() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Tanh(), torch.nn.Linear(6, 3)
    ).to(torch.float64)


class LstmHead(torch.nn.Module):
    """An LSTM read out at its last step by a linear head: gradflow's SequenceModel with
    Readout::LastStep."""

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(3, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        outputs, _ = self.rnn(x)
        return self.head(outputs[-1])


def build_lstm_model() -> LstmHead:
    return LstmHead().to(torch.float64)


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


def run_bn(model, x, r):
    """Eval mode first (with the loaded running statistics), then train mode."""
    result = {}
    for mode in ("eval", "train"):
        model.train(mode == "train")
        for name, value in run(model, x, r).items():
            result[f"{mode}.{name}"] = value
        for name, value in model.named_buffers():
            result[f"{mode}.buffer.{name}"] = value.detach().clone().to(torch.float64)
    return result


def save(name, state, expected):
    FIXTURES.mkdir(parents=True, exist_ok=True)
    save_file(state, str(FIXTURES / f"{name}.safetensors"))
    save_file({k: v.contiguous() for k, v in expected.items()}, str(FIXTURES / f"{name}_expected.safetensors"))
    print(f"torch {torch.__version__}: wrote {FIXTURES / (name + '.safetensors')} "
          f"and {FIXTURES / (name + '_expected.safetensors')}")
    for k, v in state.items():
        print(f"  state {k}: {tuple(v.shape)} {v.dtype}")
    for k, v in expected.items():
        print(f"  expected {k}: {tuple(v.shape)}")


def make_mlp():
    torch.manual_seed(SEED)
    model = build_model()
    x = torch.randn(4, 4, dtype=torch.float64)
    r = torch.randn(4, 3, dtype=torch.float64)
    result = run(model, x, r)
    save("torch_mlp", model.state_dict(), {"input": x, "grad_output": r, **result})


def make_bn_mlp():
    torch.manual_seed(BN_SEED)
    model = build_bn_model()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(2):
            model(2.0 * torch.randn(8, 4, dtype=torch.float64) + 0.5)
    assert model[1].num_batches_tracked.item() == 2
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 4, dtype=torch.float64)
    r = torch.randn(5, 3, dtype=torch.float64)
    result = run_bn(model, x, r)
    save("torch_bn_mlp", state, {"input": x, "grad_output": r, **result})


def make_lstm():
    torch.manual_seed(LSTM_SEED)
    model = build_lstm_model()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    r = torch.randn(2, 2, dtype=torch.float64)
    result = run(model, x, r)
    save("torch_lstm_head", model.state_dict(), {"input": x, "grad_output": r, **result})
    save_file(model.rnn.state_dict(), str(FIXTURES / "torch_lstm.safetensors"))
    print(f"  and {FIXTURES / 'torch_lstm.safetensors'}: {list(model.rnn.state_dict())}")


def make():
    make_mlp()
    make_bn_mlp()
    make_lstm()
    return 0


MODELS = {
    "mlp": (build_model, "torch_mlp", run),
    "bn_mlp": (build_bn_model, "torch_bn_mlp", run_bn),
    "lstm": (build_lstm_model, "torch_lstm_head", run),
}


def check(path: str, model_name: str) -> int:
    build, fixture, runner = MODELS[model_name]
    model = build()
    model.load_state_dict(load_file(path), strict=True)
    expected = load_file(str(FIXTURES / f"{fixture}_expected.safetensors"))
    result = runner(model, expected["input"], expected["grad_output"])
    worst = 0.0
    for name, value in result.items():
        diff = (value - expected[name]).abs().max().item()
        worst = max(worst, diff)
        print(f"  {name}: max |difference| = {diff:.3e}")
    ok = worst <= 1e-10
    print(("OK" if ok else "FAILED") + f": {path} loads into PyTorch's {model_name} (strict) and reproduces "
          f"the fixture (max difference {worst:.3e})")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="FILE", help="load a gradflow-written state into PyTorch and compare")
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp", help="the architecture of --check FILE")
    args = parser.parse_args()
    sys.exit(check(args.check, args.model) if args.check else make())
