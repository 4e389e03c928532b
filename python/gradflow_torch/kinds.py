"""PyTorch modules as gradflow sees layers: kind names, activations and descriptions."""

import math

from torch import nn

_SELU_MAX = 1.0507009873554805 * 1.6732632423543772


def _activation(name, family, max_derivative):
    return {"name": name, "family": family, "max_derivative": float(max_derivative)}


def activation_info(module):
    """gradflow's ``ActivationInfo`` (name, family, largest derivative) of an elementwise
    activation module, or None for other modules. Names follow gradflow's activations
    (``gradflow::activation::NAMES``) where gradflow has the activation."""
    m = module
    if isinstance(m, nn.Tanh):
        return _activation("tanh", "Saturating", 1.0)
    if isinstance(m, nn.Sigmoid):
        return _activation("sigmoid", "Saturating", 0.25)
    if isinstance(m, nn.Softsign):
        return _activation("softsign", "Saturating", 1.0)
    if isinstance(m, nn.Hardtanh) and not isinstance(m, nn.ReLU6):
        return _activation("hardtanh", "Saturating", 1.0)
    if isinstance(m, nn.Hardsigmoid):
        return _activation("hardsigmoid", "Saturating", 1.0 / 6.0)
    if isinstance(m, nn.ReLU):
        return _activation("relu", "Rectifier", 1.0)
    if isinstance(m, nn.ReLU6):
        return _activation("relu6", "Rectifier", 1.0)
    if isinstance(m, nn.LeakyReLU):
        return _activation("leaky_relu", "Rectifier", max(abs(m.negative_slope), 1.0))
    if isinstance(m, nn.PReLU):
        return _activation("prelu", "Rectifier", max(1.0, float(m.weight.detach().abs().max())))
    if isinstance(m, nn.ELU):
        return _activation("elu", "Rectifier", max(m.alpha, 1.0))
    if isinstance(m, nn.CELU):
        return _activation("celu", "Rectifier", 1.0)
    if isinstance(m, nn.SELU):
        return _activation("selu", "Rectifier", _SELU_MAX)
    if isinstance(m, nn.GELU):
        if m.approximate == "tanh":
            return _activation("gelu_tanh", "Rectifier", 1.1289930686587718)
        # Φ(√2) + √2·φ(√2), as gradflow's Gelu::max_derivative.
        r2 = math.sqrt(2.0)
        value = 0.5 * (1.0 + math.erf(1.0)) + r2 * math.exp(-1.0) / math.sqrt(2.0 * math.pi)
        return _activation("gelu", "Rectifier", value)
    if isinstance(m, nn.SiLU):
        return _activation("silu", "Rectifier", 1.099839320128867)
    if isinstance(m, nn.Mish):
        return _activation("mish", "Rectifier", 1.0884981612515674)
    if isinstance(m, nn.Softplus):
        return _activation("softplus", "Rectifier", 1.0)
    if isinstance(m, nn.Hardswish):
        return _activation("hardswish", "Rectifier", 1.5)
    return None


def kind(module):
    """The layer kind gradflow shows: the activation's name for activations (``"tanh"``, as
    gradflow's own activation layers), the class name otherwise (``"Linear"``, ``"BatchNorm1d"``,
    ``"Conv2d"``), which gradflow's layer numbering reads (normalization, dropout, pooling and
    flattening join the layer before them)."""
    info = activation_info(module)
    return info["name"] if info else type(module).__name__


def description(module):
    """A one-line description in gradflow's style, e.g. ``Linear(64→32)``."""
    info = activation_info(module)
    if info is not None:
        extra = module.extra_repr()
        return f"{info['name']}({extra})" if extra else info["name"]
    if isinstance(module, nn.Linear):
        bias = "" if module.bias is not None else ", bias=false"
        return f"Linear({module.in_features}→{module.out_features}{bias})"
    extra = module.extra_repr()
    return f"{type(module).__name__}({extra})"


#: Containers that only hold or chain their children: their children are recorded as layers
#: of their own (so ``model.layers = nn.Sequential(...)`` is seen layer by layer).
PURE_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

#: Modules that are never recorded: placeholders that compute nothing.
SKIPPED = (nn.Identity,)

#: Name components that wrappers insert (FSDP, activation checkpointing, torch.compile); they
#: are dropped from paths so that the paths are the model's own module names.
WRAPPER_COMPONENTS = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod")

#: Class names of wrappers whose ``module`` (or ``_orig_mod``) is the model.
WRAPPER_CLASSES = ("DistributedDataParallel", "DataParallel", "FullyShardedDataParallel", "OptimizedModule")


def is_wrapper(module):
    """Whether ``module`` is a DDP/FSDP/checkpoint/compile wrapper around another module."""
    name = type(module).__name__
    return name in WRAPPER_CLASSES or name == "CheckpointWrapper"


def unwrap(model):
    """The model inside DDP, DataParallel, FSDP and ``torch.compile`` wrappers."""
    while True:
        name = type(model).__name__
        if name == "OptimizedModule" and hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif name in WRAPPER_CLASSES and isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            return model


def clean_path(name):
    """A module name without the components wrappers insert."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_COMPONENTS)
