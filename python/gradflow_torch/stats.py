"""Tensor statistics as gradflow's ``TensorStats`` defines them, and activation derivatives.

Every statistic is computed over the *finite* entries of a tensor, in float64; NaN and
infinite entries are counted in ``non_finite_count`` instead, so every number stays finite
(JSON has no NaN). ``std`` is the population standard deviation (``correction=0``).

To keep the device busy, statistics are first gathered as small float64 tensors of *moments*
(``[count, non_finite, sum, sum_sq, max_abs, scale]``, on the tensor's device) and turned
into numbers (one device-to-host copy for a whole step) by :func:`finish`.
"""

import math

import torch

# Above this magnitude the squares of float64 values could overflow: sums are then taken of
# x / max|x| and scaled back.
_SCALE_ABOVE = 1e150

#: Number of entries of a moments vector.
MOMENTS = 6


def moments(tensor, scale=None):
    """The moments of ``tensor``'s entries: a float64 tensor ``[count, non_finite, Σx, Σx²,
    max|x|, scale]`` on its device, the sums taken of ``x / scale``.

    ``scale`` is chosen from the largest magnitude unless given (sharded tensors are summed
    with a scale common to every rank).
    """
    x = tensor.detach()
    if hasattr(x, "to_local"):  # a DTensor (FSDP2): this rank's shard
        x = x.to_local()
    x = x.reshape(-1)
    count = float(x.numel())
    dev = x.device
    if x.numel() == 0:
        return torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64, device=dev)
    x = x.to(torch.float64)
    finite = torch.isfinite(x)
    non_finite = count - finite.sum(dtype=torch.float64)
    x = torch.where(finite, x, torch.zeros((), dtype=torch.float64, device=dev))
    max_abs = x.abs().max()
    if scale is None:
        scale_t = torch.where(max_abs > _SCALE_ABOVE, max_abs, torch.ones((), dtype=torch.float64, device=dev))
    else:
        scale_t = torch.as_tensor(scale, dtype=torch.float64, device=dev)
    xs = x / scale_t
    return torch.stack(
        [
            torch.tensor(count, dtype=torch.float64, device=dev),
            non_finite,
            xs.sum(),
            (xs * xs).sum(),
            max_abs,
            scale_t,
        ]
    )


def finish(m):
    """The ``TensorStats`` fields (a dict) of a moments list (see :func:`moments`)."""
    count, non_finite, s, ss, max_abs, scale = m
    finite = count - non_finite
    stats = {
        "count": int(count),
        "l2_norm": 0.0,
        "mean": 0.0,
        "std": 0.0,
        "max_abs": 0.0,
        "non_finite_count": int(non_finite),
    }
    if finite <= 0:
        return stats
    mean = s / finite
    var = max(ss / finite - mean * mean, 0.0)
    stats["l2_norm"] = _finite(scale * math.sqrt(ss))
    stats["mean"] = _finite(scale * mean)
    stats["std"] = _finite(scale * math.sqrt(var))
    stats["max_abs"] = _finite(max_abs)
    return stats


def _finite(x):
    return x if math.isfinite(x) else 0.0


def tensor_stats(tensor):
    """gradflow's ``TensorStats`` of a tensor, as a dict (one device-to-host copy)."""
    return finish(moments(tensor).tolist())


def _output_units(t):
    """A (samples, units) view: the first dimension is the batch, the rest are units."""
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.dim() == 1:
        return t.reshape(1, -1)
    return t.reshape(t.shape[0], -1)


def derivative(module, x):
    """|f'(x)| of the elementwise activation ``module`` at ``x``, by autograd on a detached copy
    (``module.forward`` is called directly, so no hook runs)."""
    with torch.enable_grad():
        # In the input's own dtype: a module with parameters (PReLU) needs its dtype to match.
        inp = x.detach().clone().requires_grad_(True)
        y = module.forward(inp * 1.0)  # `* 1.0`: in-place activations may modify their input
        (d,) = torch.autograd.grad(y, inp, torch.ones_like(y))
    return d.abs()


def activation_moments(module, info, x, y, saturation_level):
    """Moments of the output and, for activations, the saturated share, the dead share and the
    mean |f'|: ``(moments, saturated, dead, mean_derivative)``, the last three float64 scalars
    on the device or None."""
    out = moments(y)
    if info is None or x is None or x.shape != y.shape or y.numel() == 0:
        return out, None, None, None
    d = derivative(module, x)
    finite = torch.isfinite(d)
    mean_derivative = torch.where(finite.all(), d.to(torch.float64).mean(), torch.tensor(float("nan"), device=d.device, dtype=torch.float64))
    saturated = dead = None
    if info["family"] == "Saturating":
        bound = saturation_level * info["max_derivative"]
        saturated = (d < bound).to(torch.float64).mean()
    elif info["family"] == "Rectifier":
        units = _output_units(d)
        dead = (units == 0).all(dim=0).to(torch.float64).mean()
    return out, saturated, dead, mean_derivative
