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

conv_resnet: a small convolutional ResNet on 3×12×12 images (batch 4), written as the PyTorch
    twin of gradflow's builder output (`Residual` = `shortcut(x) + branch(x)` with children
    `branch` and, when not the identity, `shortcut`; `ZeroPad` = option A):
        0 Conv2d(3, 4, 3, padding=1, bias=False), 1 BatchNorm2d(4), 2 ReLU,
        3 Residual(basic block 4→4, identity), 4 ReLU,
        5 Residual(basic block 4→8, stride 2, option A zero padding), 6 ReLU,
        7 Residual(basic block 8→12, stride 2, option B: 1×1 conv + BatchNorm2d), 8 ReLU,
        9 Conv2d(12, 12, 3, padding='same', dilation=2, groups=3), 10 MaxPool2d(2, 1, padding=1),
        11 AvgPool2d(2, 2, padding=1, count_include_pad=False), 12 AdaptiveAvgPool2d((2, 2)),
        13 AdaptiveAvgPool2d(1), 14 Flatten, 15 Linear(12, 5)
    (a basic block's branch is Conv2d(3×3, stride, padding 1, no bias), BatchNorm2d, ReLU,
    Conv2d(3×3, padding 1, no bias), BatchNorm2d). Every BatchNorm's weight and bias drawn at
    random and its running statistics moved by two training-mode passes, as for bn_mlp; then on
    a (4, 3, 12, 12) input, in eval mode and then in train mode:
    tests/fixtures/torch_conv_resnet.safetensors           the state_dict after the two passes
    tests/fixtures/torch_conv_resnet_expected.safetensors  as for bn_mlp ("input" (4, 3, 12, 12),
        "grad_output" (4, 5), "MODE.output", "MODE.grad.input", "MODE.grad.<parameter>",
        "MODE.buffer.<buffer>")

named_mlp: a module whose children have names, not positions — fc1 = Linear(4, 6),
    bn1 = BatchNorm1d(6), act = Tanh(), fc2 = Linear(6, 3), applied in that order — with bn1's
    weight, bias and running statistics set as for bn_mlp; then as for bn_mlp:
    tests/fixtures/torch_named_mlp.safetensors           "fc1.weight", "fc1.bias", "bn1.weight",
        "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
        "fc2.weight", "fc2.bias" — what gradflow's builder names with .named("fc1") etc.
    tests/fixtures/torch_named_mlp_expected.safetensors  as for bn_mlp

res_mlp: a residual MLP named as PyTorch code names it, with nested modules —
    stem = Linear(4, 6), blocks = ModuleList([Block(6, 6), Block(6, 8)]), head = Linear(8, 3),
    x -> head(blocks(tanh(stem(x)))), where Block(d, e) holds norm = LayerNorm(d),
    fc1 = Linear(d, e), act = GELU(), fc2 = Linear(e, e) and, when d != e, proj = Linear(d, e),
    and computes proj(x) (or x) + fc2(act(fc1(norm(x)))); the LayerNorms' weight and bias drawn
    at random (not 1 and 0):
    tests/fixtures/torch_res_mlp.safetensors           "stem.weight", …, "blocks.0.norm.weight",
        "blocks.0.fc1.weight", …, "blocks.1.proj.weight", "blocks.1.proj.bias", "head.weight", …
    tests/fixtures/torch_res_mlp_expected.safetensors  as for mlp ("input" (5, 4), "grad_output"
        (5, 3), "output", "loss", "grad.input", "grad.<parameter>")

named_lstm: an LSTM classifier named as the user likes — lstm = nn.LSTM(3, 5, num_layers=2),
    fc = nn.Linear(5, 2), x -> fc(lstm(x)[0][-1]) for x of shape (time 6, batch 3, 3):
    tests/fixtures/torch_named_lstm.safetensors           "lstm.weight_ih_l0", …,
        "lstm.bias_hh_l1", "fc.weight", "fc.bias"
    tests/fixtures/torch_named_lstm_expected.safetensors  as for lstm

tv_resnet: a small ResNet written exactly as torchvision's resnet.py names and runs it (no
    torchvision needed): conv1 = Conv2d(3, 8, 3, padding=1, bias=False), bn1, relu,
    maxpool = MaxPool2d(3, 2, 1), layer1 = Sequential(BasicBlock(8, 8), BasicBlock(8, 8)),
    layer2 = Sequential(BasicBlock(8, 16, stride 2, downsample = Sequential(Conv2d(8, 16, 1,
    stride 2, bias=False), BatchNorm2d(16))), BasicBlock(16, 16)), avgpool =
    AdaptiveAvgPool2d(1), fc = Linear(16, 5), on 3×12×12 images (batch 4), where BasicBlock holds
    conv1, bn1, relu, conv2, bn2 and downsample and computes relu(bn2(conv2(relu(bn1(conv1(x)))))
    + downsample(x) or x); BatchNorms as for conv_resnet, then eval and train passes:
    tests/fixtures/torch_tv_resnet.safetensors           "conv1.weight", "bn1.*",
        "layer1.0.conv1.weight", …, "layer2.0.downsample.0.weight", "layer2.0.downsample.1.*",
        "fc.weight", "fc.bias"
    tests/fixtures/torch_tv_resnet_expected.safetensors  as for conv_resnet

list_mlp: an MLP as a ModuleList of Linear layers with the activations as functions, not modules —
    layers = ModuleList([Linear(4, 8), Linear(8, 8), Linear(8, 3)]),
    x -> layers[2](tanh(layers[1](tanh(layers[0](x))))):
    tests/fixtures/torch_list_mlp.safetensors           "layers.0.weight", …, "layers.2.bias"
    tests/fixtures/torch_list_mlp_expected.safetensors  as for mlp

`--only NAME` writes one model's files (mlp, bn_mlp, lstm, conv_resnet, named_mlp, res_mlp,
named_lstm, tv_resnet or list_mlp).

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
    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --model conv_resnet --check /tmp/resaved/torch_conv_resnet.safetensors

The states above are PyTorch's, written back by gradflow. For a state gradflow initialized and
trained itself, the Rust tests also write its outputs and gradients as gradflow computed them;
--expected compares PyTorch's with those instead of the fixture's:

    /tmp/gradflow-venv/bin/python scripts/make_torch_fixture.py --model conv_resnet \
        --check /tmp/resaved/gradflow_conv_resnet.safetensors \
        --expected /tmp/resaved/gradflow_conv_resnet_expected.safetensors
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
CONV_SEED = SEED + 3
NAMED_SEED = SEED + 4
RES_SEED = SEED + 5
NAMED_LSTM_SEED = SEED + 6
TV_SEED = SEED + 7
LIST_SEED = SEED + 8


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


class NamedMlp(torch.nn.Module):
    """An MLP whose children have names: fc1, bn1, act, fc2."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 6)
        self.bn1 = torch.nn.BatchNorm1d(6)
        self.act = torch.nn.Tanh()
        self.fc2 = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.bn1(self.fc1(x))))


class Block(torch.nn.Module):
    """A pre-norm residual MLP block holding its layers as attributes, as PyTorch code does."""

    def __init__(self, d, e):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.fc1 = torch.nn.Linear(d, e)
        self.act = torch.nn.GELU()
        self.fc2 = torch.nn.Linear(e, e)
        self.proj = torch.nn.Linear(d, e) if d != e else None

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return shortcut + self.fc2(self.act(self.fc1(self.norm(x))))


class ResMlp(torch.nn.Module):
    """stem, a ModuleList of blocks, head."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Linear(4, 6)
        self.blocks = torch.nn.ModuleList([Block(6, 6), Block(6, 8)])
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        h = torch.tanh(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class NamedLstm(torch.nn.Module):
    """A two-layer LSTM read out at its last step by a head called fc."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 5, num_layers=2)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x):
        outputs, _ = self.lstm(x)
        return self.fc(outputs[-1])


class BasicBlock(torch.nn.Module):
    """torchvision.models.resnet.BasicBlock, with its attribute names and forward."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TvResNet(torch.nn.Module):
    """torchvision.models.resnet.ResNet's names and forward, two small stages."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        downsample = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2, downsample), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ListMlp(torch.nn.Module):
    """Linear layers in a ModuleList, tanh applied as a function between them."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 3)])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


def build_list_model() -> ListMlp:
    return ListMlp().to(torch.float64)


def build_tv_model() -> TvResNet:
    return TvResNet().to(torch.float64)


def build_res_model() -> ResMlp:
    return ResMlp().to(torch.float64)


def build_named_lstm_model() -> NamedLstm:
    return NamedLstm().to(torch.float64)


def build_named_model() -> NamedMlp:
    return NamedMlp().to(torch.float64)


def build_lstm_model() -> LstmHead:
    return LstmHead().to(torch.float64)


class Residual(torch.nn.Module):
    """shortcut(x) + branch(x): gradflow's ResidualBlock, with its children's names."""

    def __init__(self, branch, shortcut=None):
        super().__init__()
        self.branch = branch
        if shortcut is not None:
            self.shortcut = shortcut

    def forward(self, x):
        return (self.shortcut(x) if hasattr(self, "shortcut") else x) + self.branch(x)


class ZeroPad(torch.nn.Module):
    """He et al.'s option A: x[:, :, ::s, ::s] and zero channels, (out - in) // 2 before the rest."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.front = (out_channels - in_channels) // 2
        self.back = out_channels - in_channels - self.front
        self.stride = stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return torch.nn.functional.pad(x, (0, 0, 0, 0, self.front, self.back))


def basic_block(cin, cout, stride, option):
    nn = torch.nn
    branch = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
    )
    if stride == 1 and cin == cout:
        return Residual(branch)
    if option == "A":
        return Residual(branch, ZeroPad(cin, cout, stride))
    return Residual(branch, nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))


def build_conv_model() -> torch.nn.Sequential:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        basic_block(4, 4, 1, "A"), nn.ReLU(),
        basic_block(4, 8, 2, "A"), nn.ReLU(),
        basic_block(8, 12, 2, "B"), nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding="same", dilation=2, groups=3),
        nn.MaxPool2d(2, 1, padding=1),
        nn.AvgPool2d(2, 2, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d((2, 2)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 5),
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


def make_plain(name, seed, build, x_shape, r_shape, prepare=None):
    """A model without running statistics: built from `seed`, set up by `prepare` (if any), run
    once on an input of `x_shape` with R of `r_shape`; writes NAME and NAME_expected."""
    torch.manual_seed(seed)
    model = build()
    if prepare is not None:
        with torch.no_grad():
            prepare(model)
    x = torch.randn(*x_shape, dtype=torch.float64)
    r = torch.randn(*r_shape, dtype=torch.float64)
    result = run(model, x, r)
    save(name, model.state_dict(), {"input": x, "grad_output": r, **result})
    return model


def make_mlp():
    make_plain("torch_mlp", SEED, build_model, (4, 4), (4, 3))


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
    model = make_plain("torch_lstm_head", LSTM_SEED, build_lstm_model, (5, 2, 3), (2, 2))
    save_file(model.rnn.state_dict(), str(FIXTURES / "torch_lstm.safetensors"))
    print(f"  and {FIXTURES / 'torch_lstm.safetensors'}: {list(model.rnn.state_dict())}")


def make_conv_resnet(seed=CONV_SEED, build=build_conv_model, name="torch_conv_resnet"):
    torch.manual_seed(seed)
    model = build()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(2):
            model(2.0 * torch.randn(6, 3, 12, 12, dtype=torch.float64) + 0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    r = torch.randn(4, 5, dtype=torch.float64)
    result = run_bn(model, x, r)
    save(name, state, {"input": x, "grad_output": r, **result})


def make_tv_resnet():
    make_conv_resnet(TV_SEED, build_tv_model, "torch_tv_resnet")


def make_named_mlp():
    torch.manual_seed(NAMED_SEED)
    model = build_named_model()
    with torch.no_grad():
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(2):
            model(2.0 * torch.randn(8, 4, dtype=torch.float64) + 0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 4, dtype=torch.float64)
    r = torch.randn(5, 3, dtype=torch.float64)
    result = run_bn(model, x, r)
    save("torch_named_mlp", state, {"input": x, "grad_output": r, **result})


def make_res_mlp():
    def random_norms(model):
        for block in model.blocks:
            block.norm.weight.uniform_(0.5, 1.5)
            block.norm.bias.uniform_(-0.5, 0.5)

    make_plain("torch_res_mlp", RES_SEED, build_res_model, (5, 4), (5, 3), random_norms)


def make_list_mlp():
    make_plain("torch_list_mlp", LIST_SEED, build_list_model, (5, 4), (5, 3))


def make_named_lstm():
    make_plain("torch_named_lstm", NAMED_LSTM_SEED, build_named_lstm_model, (6, 3, 3), (3, 2))


MAKERS = {
    "mlp": make_mlp,
    "bn_mlp": make_bn_mlp,
    "lstm": make_lstm,
    "conv_resnet": make_conv_resnet,
    "named_mlp": make_named_mlp,
    "res_mlp": make_res_mlp,
    "named_lstm": make_named_lstm,
    "tv_resnet": make_tv_resnet,
    "list_mlp": make_list_mlp,
}


def make(only=None):
    for name, maker in MAKERS.items():
        if only in (None, name):
            maker()
    return 0


MODELS = {
    "mlp": (build_model, "torch_mlp", run),
    "bn_mlp": (build_bn_model, "torch_bn_mlp", run_bn),
    "lstm": (build_lstm_model, "torch_lstm_head", run),
    "conv_resnet": (build_conv_model, "torch_conv_resnet", run_bn),
    "named_mlp": (build_named_model, "torch_named_mlp", run_bn),
    "res_mlp": (build_res_model, "torch_res_mlp", run),
    "named_lstm": (build_named_lstm_model, "torch_named_lstm", run),
    "tv_resnet": (build_tv_model, "torch_tv_resnet", run_bn),
    "list_mlp": (build_list_model, "torch_list_mlp", run),
}


def check(path: str, model_name: str, expected_path: str = None) -> int:
    build, fixture, runner = MODELS[model_name]
    model = build()
    model.load_state_dict(load_file(path), strict=True)
    expected = load_file(expected_path or str(FIXTURES / f"{fixture}_expected.safetensors"))
    result = runner(model, expected["input"], expected["grad_output"])
    worst = 0.0
    for name, value in result.items():
        diff = (value - expected[name]).abs().max().item()
        worst = max(worst, diff)
        print(f"  {name}: max |difference| = {diff:.3e}")
    ok = worst <= 1e-10
    print(("OK" if ok else "FAILED") + f": {path} loads into PyTorch's {model_name} (strict) and reproduces "
          f"{expected_path or 'the fixture'} (max difference {worst:.3e})")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="FILE", help="load a gradflow-written state into PyTorch and compare")
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp", help="the architecture of --check FILE")
    parser.add_argument("--expected", metavar="FILE", help="compare with these outputs and gradients, not the fixture's")
    parser.add_argument("--only", choices=sorted(MAKERS), help="write only this model's fixture files")
    args = parser.parse_args()
    sys.exit(check(args.check, args.model, args.expected) if args.check else make(args.only))
