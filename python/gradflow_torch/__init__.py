"""gradflow_torch — record a PyTorch run's gradient flow for gradflow's diagnosis.

Attach a :class:`Recorder` to any ``torch.nn.Module`` (also inside DistributedDataParallel or
FSDP), train as usual calling ``recorder.end_step(loss)`` after each ``loss.backward()``, and
diagnose the file with gradflow's command-line tool::

    gradflow diagnose run.jsonl
    gradflow report run.jsonl --out report/

The file is gradflow's recording schema as JSON lines (``gradflow.recording.jsonl``, version 1):
per-layer ‖dL/dh‖, ‖dL/dW‖, ‖W‖, update ratios, saturated and dead shares of activations,
non-finite counts, and the loss of every step. Only ``torch`` and the standard library are used.
"""

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError("gradflow_torch needs PyTorch: install torch first (https://pytorch.org)") from e

__version__ = "0.1.0"

from .kinds import activation_info, kind, unwrap  # noqa: E402
from .recorder import SCHEMA, SCHEMA_VERSION, Recorder  # noqa: E402
from .stats import tensor_stats  # noqa: E402

__all__ = [
    "Recorder",
    "SCHEMA",
    "SCHEMA_VERSION",
    "activation_info",
    "kind",
    "tensor_stats",
    "unwrap",
    "__version__",
]
