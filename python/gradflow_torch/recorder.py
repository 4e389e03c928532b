"""The recorder: hooks on a ``torch.nn.Module`` that write gradflow's recording as JSON lines."""

import json
import math
import os
import warnings

import torch
from torch import nn

from . import kinds
from .stats import MOMENTS, activation_moments, finish, moments

#: The ``schema`` of the header line (gradflow's ``RECORDING_JSONL_SCHEMA``).
SCHEMA = "gradflow.recording.jsonl"
#: The ``schema_version`` written (gradflow's ``RECORDING_JSONL_VERSION``).
SCHEMA_VERSION = 1

_FLOATS = {
    torch.float32: "f32",
    torch.float64: "f64",
    torch.bfloat16: "bf16",
    torch.float16: "f16",
}


def _first_tensor(value):
    """The first tensor in a module's input or output (a tensor, or a tuple/list/dict of them)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        for item in value.values():
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


class _Layer:
    """One recorded module."""

    def __init__(self, path, module):
        self.path = path
        self.module = module
        self.info = kinds.activation_info(module)
        self.kind = kinds.kind(module)
        self.description = kinds.description(module)
        self.is_container = False
        self.declared = False
        self.seen = False
        self.saved_input = None
        self.derivative_ok = True

    def declaration(self):
        return {
            "type": "layer",
            "path": self.path,
            "kind": self.kind,
            "description": self.description,
            "layer_number": None,
            "depth": self.path.count("."),
            "is_container": self.is_container,
            "activation": self.info,
        }


class Recorder:
    """Records a PyTorch model's gradient flow, step by step, into a JSON-lines file that
    ``gradflow diagnose FILE`` (and ``gradflow::export::read_recording_jsonl``) reads.

    Attach it to any ``nn.Module`` (also one wrapped in ``DistributedDataParallel``,
    ``DataParallel`` or FSDP), and call :meth:`end_step` once per training
    step, after ``loss.backward()`` and before ``optimizer.step()``::

        recorder = Recorder(model, "run.jsonl")
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            recorder.end_step(loss)
            optimizer.step()
        recorder.close()

    What is recorded, per layer and per recorded step (steps 0, n, 2n, … for
    ``every_n_steps=n``), in gradflow's recording schema:

    - ‖dL/dh‖: statistics of the gradient with respect to each layer's output (a hook on the
      output tensor; the gradient a layer sends below, ``grad_input``, is not recorded: null);
    - the output's scale and, for activations, the share of saturated units (sigmoid, tanh:
      derivative below ``saturation_level`` × its largest value), of dead units (ReLU family:
      derivative 0 for every sample) and the mean |f'| (``activations=True``);
    - each parameter's ‖dL/dW‖ statistics, ‖W‖ and ‖dL/dW‖/‖W‖ (``parameters=True``), and the
      update ratio ‖ΔW‖/‖W‖ of the optimizer step that followed (``updates=True``: the
      parameters of a recorded step are copied at :meth:`end_step` and compared at the next
      call; costs one copy of the parameters);
    - NaN and infinite entries, counted in every statistic's ``non_finite_count``;
    - the loss of every step passed to :meth:`end_step` (a NaN or infinite loss is not
      written, as in gradflow, and is warned about).

    Layers are the model's modules, named by their PyTorch module names (``layers.3``,
    ``fc1``): every module that runs forward except the model itself, pure containers
    (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``: their children are recorded
    instead), ``nn.Identity`` and wrappers. A module of your own class (a residual block) is
    recorded as a container with its children inside it, as gradflow records its blocks. A
    module called several times per step (a shared activation) keeps the statistics of its
    last call; functional activations (``F.relu``) are not seen. Forward passes without
    gradient (``torch.no_grad()``) or in eval mode are not recorded. Attach the recorder to the
    model before ``torch.compile``: the paths drop ``_orig_mod``, but hooks inside compiled
    code are not tested.

    In a distributed run (``torch.distributed`` initialized), only rank 0 writes the file and
    runs the hooks; call :meth:`end_step` on every rank anyway: with FSDP (sharded parameters)
    the parameter norms are summed over the ranks' shards with collectives.
    """

    def __init__(
        self,
        model,
        path,
        *,
        every_n_steps=1,
        activations=True,
        parameters=True,
        updates=True,
        saturation_level=0.05,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Recorder: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ValueError(f"Recorder: invalid `every_n_steps`: must be at least 1, got {every_n_steps!r}")
        if not (isinstance(saturation_level, (int, float)) and 0.0 < saturation_level < 1.0):
            raise ValueError(f"Recorder: invalid `saturation_level`: must be in (0, 1), got {saturation_level!r}")
        if updates and not parameters:
            raise ValueError(
                "Recorder: invalid `updates`: update ratios are stored with the parameter statistics: "
                "set `parameters` too"
            )
        self.config = {
            "every_n_steps": every_n_steps,
            "activations": bool(activations),
            "parameters": bool(parameters),
            "updates": bool(updates),
            "saturation_level": float(saturation_level),
        }
        self.path = os.fspath(path)
        self.wrapper = model
        self.model = kinds.unwrap(model)
        self.sharded = self._is_sharded(model)
        dist = torch.distributed
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.writes = self.rank == 0
        #: The step that the next :meth:`end_step` closes (0 for the first).
        self.step = 0
        self.layers = self._collect_layers()
        self._order = []  # layers in the order they first ran forward
        self._current = {}  # layer index -> {"grad_output": moments, "activation": (...)}
        self._pending = None  # a recorded step waiting for its update ratios
        self._snapshot = None  # parameter copies of the pending step
        self._handles = []
        self._file = None
        self._warned_loss = False
        if self.writes:
            self._attach_hooks()
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
            self._write(
                {
                    "schema": SCHEMA,
                    "schema_version": SCHEMA_VERSION,
                    "float": self._float_name(),
                    "producer": f"gradflow_torch {_version()} (torch {torch.__version__})",
                    "config": self.config,
                }
            )
            self._file.flush()

    # ----- set-up -----

    @staticmethod
    def _is_sharded(model):
        if any("FullyShardedDataParallel" in type(m).__name__ for m in model.modules()):
            return True
        # FSDP2 (`fully_shard`): parameters are DTensors.
        return any(hasattr(p, "to_local") and hasattr(p, "placements") for p in model.parameters())

    def _float_name(self):
        for p in self.model.parameters():
            if p.is_floating_point():
                return _FLOATS.get(p.dtype, str(p.dtype).replace("torch.", ""))
        return "f32"

    def _collect_layers(self):
        layers = []
        paths = set()
        for name, module in self.model.named_modules():
            if not name or isinstance(module, kinds.PURE_CONTAINERS + kinds.SKIPPED) or kinds.is_wrapper(module):
                continue
            path = kinds.clean_path(name)
            if not path or path in paths:
                continue
            paths.add(path)
            layers.append(_Layer(path, module))
        for layer in layers:
            prefix = layer.path + "."
            layer.is_container = any(other.path.startswith(prefix) for other in layers)
        return layers

    def _attach_hooks(self):
        for index, layer in enumerate(self.layers):
            if layer.info is not None and getattr(layer.module, "inplace", False):
                self._handles.append(layer.module.register_forward_pre_hook(self._pre_hook(index)))
            self._handles.append(layer.module.register_forward_hook(self._forward_hook(index)))

    def _recording(self):
        return (
            self.step % self.config["every_n_steps"] == 0 and torch.is_grad_enabled() and self.model.training
        )

    def _pre_hook(self, index):
        layer = self.layers[index]

        def hook(module, inputs):
            # An in-place activation overwrites its input: keep a copy for the derivative.
            x = _first_tensor(inputs)
            layer.saved_input = x.detach().clone() if x is not None and self._recording() else None

        return hook

    def _forward_hook(self, index):
        layer = self.layers[index]

        def hook(module, inputs, output):
            if not layer.seen:
                layer.seen = True
                self._order.append(index)
            if not self._recording():
                return
            y = _first_tensor(output)
            if y is None or not y.is_floating_point():
                return
            entry = self._current.setdefault(index, {"grad_output": None, "activation": None})
            if self.config["activations"]:
                x = layer.saved_input if layer.saved_input is not None else _first_tensor(inputs)
                layer.saved_input = None
                if x is not None and not x.is_floating_point():
                    x = None
                try:
                    entry["activation"] = activation_moments(
                        module, layer.info if layer.derivative_ok else None, x, y.detach(),
                        self.config["saturation_level"],
                    )
                except Exception as e:  # never stop a training run: keep the output's scale
                    layer.derivative_ok = False
                    warnings.warn(f"gradflow_torch: no derivative statistics for `{layer.path}`: {e}")
                    entry["activation"] = activation_moments(module, None, x, y.detach(), 0.05)
            if y.requires_grad:
                step = self.step

                def grad_hook(grad):
                    if self.step == step:
                        entry["grad_output"] = moments(grad)

                y.register_hook(grad_hook)

        return hook

    # ----- steps -----

    def end_step(self, loss=None):
        """Closes the current training step: call it after ``loss.backward()`` and before
        ``optimizer.step()``, on every rank. Records the parameters' gradients and norms if the
        step is recorded, the update ratios of the previous recorded step, and the loss."""
        if self.step < 0:
            raise RuntimeError("Recorder: end_step after close")
        step = self.step
        if self._snapshot is not None or self._pending is not None:
            self._measure_updates()
            self._flush_pending()
        if step % self.config["every_n_steps"] == 0 and (self.writes or self.sharded):
            # None on ranks other than 0, which only take part in the sums over shards.
            self._pending = self._record_step(step)
            if self.config["updates"]:
                self._snapshot = [p.detach().clone() for _, _, p in self._params_with_grads()]
            else:
                self._flush_pending()
        self._current = {}
        if loss is not None and self.writes:
            value = float(loss.detach().float().item()) if isinstance(loss, torch.Tensor) else float(loss)
            if math.isfinite(value):
                self._write({"type": "loss", "step": step, "loss": value})
            elif not self._warned_loss:
                self._warned_loss = True
                warnings.warn(f"gradflow_torch: the loss of step {step} is {value}; non-finite losses are not recorded")
        if self._file is not None:
            self._file.flush()
        self.step += 1

    def _params_with_grads(self):
        """(layer index, name, parameter) of every parameter, in a fixed order on every rank."""
        for index, layer in enumerate(self.layers):
            for name, p in layer.module.named_parameters(recurse=False):
                yield index, name, p

    def _reduce(self, table):
        """Sums the moments of sharded tensors over the ranks (`table`: K × MOMENTS, float64),
        the largest magnitude by its maximum."""
        if not (self.sharded and self.distributed) or table.numel() == 0:
            return table
        dist = torch.distributed
        work = table if dist.get_backend() != "gloo" else table.cpu()
        sums = work[:, :4].contiguous()
        maxes = work[:, 4].contiguous()
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        dist.all_reduce(maxes, op=dist.ReduceOp.MAX)
        out = work.clone()
        out[:, :4] = sums
        out[:, 4] = maxes
        return out

    def _param_table(self, tensors):
        """Moments of each tensor (None: no entries), reduced over the ranks when sharded."""
        scale = 1.0 if self.sharded else None
        rows = [None if t is None else moments(t, scale) for t in tensors]
        device = next((r.device for r in rows if r is not None), torch.device("cpu"))
        empty = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64, device=device)
        if not rows:
            return []
        table = torch.stack([empty if r is None else r.to(device) for r in rows])
        return self._reduce(table).tolist()

    def _record_step(self, step):
        params = list(self._params_with_grads()) if self.config["parameters"] else []
        grads = self._param_table([p.grad for _, _, p in params])
        values = self._param_table([p for _, _, p in params])
        if not self.writes:
            return None
        per_layer = {}
        for (index, name, p), g, v in zip(params, grads, values):
            if p.grad is None and not self.sharded:
                continue
            value_norm = finish(v)["l2_norm"]
            grad = finish(g)
            per_layer.setdefault(index, []).append(
                {
                    "name": name,
                    "grad": grad,
                    "value_norm": value_norm,
                    "grad_to_value_ratio": grad["l2_norm"] / value_norm if value_norm > 0 else None,
                    "update_to_value_ratio": None,
                }
            )
        lines = []
        for index in self._order:
            entry = self._current.get(index, {})
            grad_output = entry.get("grad_output")
            act = entry.get("activation")
            params_of = per_layer.get(index, [])
            if grad_output is None and act is None and not params_of:
                continue
            line = {
                "type": "step",
                "path": self.layers[index].path,
                "step": step,
                "grad_output": finish(grad_output.tolist()) if grad_output is not None else None,
                "grad_input": None,
                "activation": _activation_stats(act) if act is not None else None,
                "params": params_of,
            }
            lines.append((index, line))
        return {"step": step, "lines": lines}

    def _measure_updates(self):
        """Fills the update ratios of the pending step: ‖W_now − W_then‖ / ‖W_then‖."""
        if self._snapshot is None:
            return
        params = list(self._params_with_grads())
        diffs = [
            (p.detach() - old) if p.shape == old.shape else None for (_, _, p), old in zip(params, self._snapshot)
        ]
        table = self._param_table(diffs)
        self._snapshot = None
        if self._pending is None:
            return
        distance = {}
        for (index, name, _), d, diff in zip(params, table, diffs):
            if diff is not None:
                distance[(index, name)] = finish(d)
        for index, line in self._pending["lines"]:
            for p in line["params"]:
                d = distance.get((index, p["name"]))
                if d is not None and d["non_finite_count"] == 0 and p["value_norm"] > 0:
                    p["update_to_value_ratio"] = d["l2_norm"] / p["value_norm"]

    def _flush_pending(self):
        pending, self._pending = self._pending, None
        if pending is None or not self.writes:
            return
        for index, line in pending["lines"]:
            layer = self.layers[index]
            if not layer.declared:
                # Declare, in first-forward order, every layer seen so far up to this one.
                for earlier in self._order:
                    if not self.layers[earlier].declared:
                        self.layers[earlier].declared = True
                        self._write(self.layers[earlier].declaration())
            self._write(line)

    def _write(self, obj):
        self._file.write(json.dumps(obj, allow_nan=False, ensure_ascii=False, separators=(",", ":")))
        self._file.write("\n")

    def close(self):
        """Writes the last recorded step (without update ratios: no optimizer step followed it
        within the recording), removes the hooks and closes the file. Idempotent."""
        if self.step < 0:
            return
        self._snapshot = None
        self._flush_pending()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._file is not None:
            self._file.close()
            self._file = None
        self.step = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _activation_stats(act):
    out, saturated, dead, mean_derivative = act
    values = [out] + [t.reshape(1) for t in (saturated, dead, mean_derivative) if t is not None]
    flat = torch.cat([v.to(torch.float64).reshape(-1) for v in values]).tolist()
    stats = {"output": finish(flat[:MOMENTS]), "saturated_fraction": None, "dead_fraction": None, "mean_derivative": None}
    rest = iter(flat[MOMENTS:])
    for key, t in (("saturated_fraction", saturated), ("dead_fraction", dead), ("mean_derivative", mean_derivative)):
        if t is not None:
            value = next(rest)
            stats[key] = value if math.isfinite(value) else None
    return stats


def _version():
    from . import __version__

    return __version__
