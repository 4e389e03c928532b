#!/usr/bin/env python3
"""Reads a gradflow TensorBoard run back with TensorBoard's own reader and checks its values.

    python3 -m venv /tmp/gradflow-venv
    /tmp/gradflow-venv/bin/pip install tensorboard
    GRADFLOW_TB_OUT=/tmp/gradflow-tb-run cargo test --test io_tensorboard
    /tmp/gradflow-venv/bin/python scripts/check_tensorboard.py /tmp/gradflow-tb-run

The run is the one `write_run` in tests/io_tensorboard.rs writes: for steps 0..4 the scalars
loss = 1/(step+1), grad_norm/0 = 0.5**step, grad_norm/2 = 1, and a histogram grad/0.weight of
the six values [-1, -0.55, -0.05, 0.05, 0.3, 1] * 0.5**step in four buckets. The script loads it
with tensorboard.backend.event_processing.event_accumulator.EventAccumulator (the reference
parser: it checks the TFRecord CRCs and decodes the protobuf Event messages) and compares.
Exit status 0 when everything matches.
"""

import math
import sys

from tensorboard.backend.event_processing import event_accumulator


def main(logdir: str) -> int:
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
    )
    acc.Reload()
    tags = acc.Tags()
    print("tags:", {k: v for k, v in tags.items() if v})
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    expect(sorted(tags["scalars"]) == ["grad_norm/0", "grad_norm/2", "loss"], f"scalar tags {tags['scalars']}")
    expect(tags["histograms"] == ["grad/0.weight"], f"histogram tags {tags['histograms']}")
    formulas = {"loss": lambda s: 1 / (s + 1), "grad_norm/0": lambda s: 0.5**s, "grad_norm/2": lambda s: 1.0}
    for tag, formula in formulas.items():
        events = acc.Scalars(tag)
        print(f"{tag}: " + ", ".join(f"step {e.step}={e.value:.6g}" for e in events))
        expect([e.step for e in events] == list(range(5)), f"{tag} steps")
        for e in events:
            # simple_value is a 32-bit float.
            expect(math.isclose(e.value, formula(e.step), rel_tol=1e-7), f"{tag} at step {e.step}: {e.value}")
    for e in acc.Histograms("grad/0.weight"):
        h = e.histogram_value
        scale = 0.5**e.step
        values = [v * scale for v in [-1, -0.55, -0.05, 0.05, 0.3, 1]]
        print(f"grad/0.weight step {e.step}: min={h.min:.6g} max={h.max:.6g} num={h.num:g} "
              f"sum={h.sum:.6g} sum_squares={h.sum_squares:.6g} limits={list(h.bucket_limit)} "
              f"counts={list(h.bucket)}")
        expect(h.min == min(values) and h.max == max(values), f"histogram min/max at {e.step}")
        expect(h.num == 6 and sum(h.bucket) == 6, f"histogram count at {e.step}")
        expect(math.isclose(h.sum, sum(values), abs_tol=1e-15), f"histogram sum at {e.step}")
        expect(math.isclose(h.sum_squares, sum(v * v for v in values), rel_tol=1e-12), f"sum_squares at {e.step}")
        expect(list(h.bucket) == [0, 2, 1, 2, 1], f"histogram buckets at {e.step}: {list(h.bucket)}")
        expect(list(h.bucket_limit) == [v * scale for v in [-1, -0.5, 0, 0.5, 1]], f"limits at {e.step}")
    expect(len(acc.Histograms("grad/0.weight")) == 5, "five histograms")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("OK: TensorBoard's EventAccumulator reads back every scalar and histogram")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
