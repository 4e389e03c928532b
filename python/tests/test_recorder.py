"""Tests of gradflow_torch: python -m unittest discover -s python/tests (from the repository;
they test the installed package if there is one, else the sources in python/).

Every number the recorder writes is checked against the same quantity computed directly with
PyTorch (autograd, ``Tensor.norm``), and the file against the schema gradflow reads.
"""

import json
import math
import os
import sys
import tempfile
import unittest
import warnings

import torch
from torch import nn

try:  # the installed package (pip install ./python), else the sources beside the tests
    import gradflow_torch  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gradflow_torch import SCHEMA, SCHEMA_VERSION, Recorder, kind, tensor_stats  # noqa: E402
from gradflow_torch.kinds import unwrap  # noqa: E402


def read(path):
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    header, rest = lines[0], lines[1:]
    layers = [l for l in rest if l.get("type") == "layer"]
    steps = [l for l in rest if l.get("type") == "step"]
    losses = [l for l in rest if l.get("type") == "loss"]
    assert len(layers) + len(steps) + len(losses) == len(rest), "unknown line types"
    return header, layers, steps, losses


def step_line(steps, path, step):
    found = [s for s in steps if s["path"] == path and s["step"] == step]
    assert len(found) == 1, (path, step, len(found))
    return found[0]


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc_a = nn.Linear(width, width)
        self.act = nn.Tanh()
        self.fc_b = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc_b(self.act(self.fc_a(x)))


class Named(nn.Module):
    """Named modules, defined in another order than they run."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(6, 2)
        self.act1 = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(4, 6)
        self.bn1 = nn.BatchNorm1d(6)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.head(self.act1(self.bn1(self.fc1(x))))


def train(model, recorder, steps, inputs=4, classes=2, batch=8, lr=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        x = torch.randn(batch, inputs, generator=g)
        y = torch.randint(0, classes, (batch,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        recorder.end_step(loss)
        opt.step()


class TensorStatsTest(unittest.TestCase):
    def test_matches_gradflows_definition(self):
        # The example of gradflow's TensorStats documentation.
        s = tensor_stats(torch.tensor([3.0, -4.0, float("nan")]))
        self.assertEqual(s, {"count": 3, "l2_norm": 5.0, "mean": -0.5, "std": 3.5, "max_abs": 4.0, "non_finite_count": 1})
        x = torch.randn(1000, dtype=torch.float64)
        s = tensor_stats(x)
        self.assertAlmostEqual(s["l2_norm"], x.norm().item(), places=10)
        self.assertAlmostEqual(s["std"], x.std(correction=0).item(), places=10)
        empty = tensor_stats(torch.full((4,), float("inf")))
        self.assertEqual((empty["count"], empty["non_finite_count"], empty["l2_norm"]), (4, 4, 0.0))

    def test_huge_float64_values_stay_finite(self):
        s = tensor_stats(torch.tensor([1e200, -1e200], dtype=torch.float64))
        self.assertTrue(math.isclose(s["l2_norm"], math.sqrt(2) * 1e200, rel_tol=1e-12))


class RecorderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "sub", "run.jsonl")
        torch.manual_seed(0)

    def tearDown(self):
        self.dir.cleanup()

    def test_mlp_statistics_match_autograd(self):
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2))
        x = torch.randn(16, 4)
        y = torch.randint(0, 2, (16,))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        outputs = {}

        def keep(name):
            def hook(module, inputs, output):
                output.retain_grad()
                outputs[name] = output

            return hook

        for name, m in model.named_children():
            m.register_forward_hook(keep(name))
        with Recorder(model, self.path) as rec:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
            rec.end_step(loss)
            opt.step()
            rec.end_step(loss)  # closes step 1 (no backward: nothing but the loss)
        header, layers, steps, losses = read(self.path)
        self.assertEqual((header["schema"], header["schema_version"]), (SCHEMA, SCHEMA_VERSION))
        self.assertEqual(header["schema"], "gradflow.recording.jsonl")
        self.assertEqual(header["float"], "f32")
        self.assertEqual(
            header["config"],
            {"every_n_steps": 1, "activations": True, "parameters": True, "updates": True, "saturation_level": 0.05},
        )
        self.assertEqual([l["path"] for l in layers], ["0", "1", "2", "3", "4"])
        self.assertEqual([l["kind"] for l in layers], ["Linear", "tanh", "Linear", "sigmoid", "Linear"])
        self.assertEqual(layers[0]["description"], "Linear(4→8)")
        self.assertEqual(layers[3]["activation"], {"name": "sigmoid", "family": "Saturating", "max_derivative": 0.25})
        self.assertEqual([l["step"] for l in losses], [0, 1])
        self.assertAlmostEqual(losses[0]["loss"], loss.item(), places=6)
        for name in ["0", "1", "2", "3", "4"]:
            line = step_line(steps, name, 0)
            g = outputs[name].grad
            self.assertAlmostEqual(line["grad_output"]["l2_norm"], g.norm().item(), places=6)
            self.assertEqual(line["grad_output"]["count"], g.numel())
            self.assertAlmostEqual(line["activation"]["output"]["std"], outputs[name].std(correction=0).item(), places=5)
            self.assertIsNone(line["grad_input"])
        tanh = step_line(steps, "1", 0)["activation"]
        h = outputs["1"].detach()
        self.assertAlmostEqual(tanh["mean_derivative"], (1 - h * h).mean().item(), places=5)
        self.assertAlmostEqual(tanh["saturated_fraction"], ((1 - h * h) < 0.05).float().mean().item(), places=6)
        self.assertIsNone(tanh["dead_fraction"])
        linear = step_line(steps, "2", 0)
        self.assertEqual([p["name"] for p in linear["params"]], ["weight", "bias"])
        weight = linear["params"][0]
        w0, g0 = before["2.weight"], grads["2.weight"]
        self.assertAlmostEqual(weight["grad"]["l2_norm"], g0.norm().item(), places=6)
        self.assertAlmostEqual(weight["value_norm"], w0.norm().item(), places=5)
        self.assertAlmostEqual(weight["grad_to_value_ratio"], (g0.norm() / w0.norm()).item(), places=6)
        moved = (model[2].weight.detach() - w0).norm() / w0.norm()
        self.assertAlmostEqual(weight["update_to_value_ratio"], moved.item(), places=6)

    def test_every_n_steps_and_losses_of_every_step(self):
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        with Recorder(model, self.path, every_n_steps=2) as rec:
            train(model, rec, 5)
        _, _, steps, losses = read(self.path)
        self.assertEqual(sorted({s["step"] for s in steps}), [0, 2, 4])
        self.assertEqual([l["step"] for l in losses], [0, 1, 2, 3, 4])
        # Every recorded step but the last knows the update that followed it.
        for s in steps:
            if s["params"]:
                ratio = s["params"][0]["update_to_value_ratio"]
                self.assertEqual(ratio is None, s["step"] == 4, s)

    def test_dead_and_saturated_units(self):
        model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
        with torch.no_grad():
            model[0].bias[:3] = -100.0  # units 0-2 never fire
            model[2].weight.mul_(100.0)  # tanh saturates
        with Recorder(model, self.path) as rec:
            train(model, rec, 1)
        _, _, steps, _ = read(self.path)
        relu = step_line(steps, "1", 0)["activation"]
        self.assertGreaterEqual(relu["dead_fraction"], 0.5)
        self.assertIsNone(relu["saturated_fraction"])
        self.assertGreater(step_line(steps, "3", 0)["activation"]["saturated_fraction"], 0.5)

    def test_residual_blocks_are_containers_with_their_layers_inside(self):
        model = nn.Sequential(nn.Linear(4, 8), Block(8), Block(8), nn.Linear(8, 2))
        with Recorder(model, self.path) as rec:
            train(model, rec, 2)
        _, layers, steps, _ = read(self.path)
        paths = [l["path"] for l in layers]
        # In the order they first ran forward (a block after its children).
        self.assertEqual(paths, ["0", "1.fc_a", "1.act", "1.fc_b", "1", "2.fc_a", "2.act", "2.fc_b", "2", "3"])
        by_path = {l["path"]: l for l in layers}
        self.assertTrue(by_path["1"]["is_container"])
        self.assertEqual(by_path["1"]["kind"], "Block")
        self.assertEqual(by_path["1.fc_a"]["depth"], 1)
        self.assertFalse(by_path["1.fc_a"]["is_container"])
        self.assertIsNotNone(step_line(steps, "1", 0)["grad_output"])
        self.assertEqual(step_line(steps, "1", 0)["params"], [])

    def test_named_modules_in_forward_order_with_inplace_activation(self):
        model = Named()
        with Recorder(model, self.path) as rec:
            train(model, rec, 2)
        _, layers, steps, _ = read(self.path)
        self.assertEqual([l["path"] for l in layers], ["fc1", "bn1", "act1", "head"])
        self.assertEqual([l["kind"] for l in layers], ["Linear", "BatchNorm1d", "relu", "Linear"])
        act = step_line(steps, "act1", 0)["activation"]
        self.assertIsNotNone(act["dead_fraction"])
        self.assertGreater(act["mean_derivative"], 0.0)
        self.assertEqual(kind(nn.GELU()), "gelu")

    def test_no_grad_and_eval_passes_are_not_recorded(self):
        model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
        with Recorder(model, self.path) as rec:
            with torch.no_grad():
                model(torch.randn(3, 4))
            model.eval()
            model(torch.randn(3, 4))
            model.train()
            rec.end_step()
        _, layers, steps, losses = read(self.path)
        self.assertEqual(steps, [])
        self.assertEqual(losses, [])

    def test_non_finite_values_are_counted_and_a_nan_loss_is_not_written(self):
        model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
        with Recorder(model, self.path) as rec:
            x = torch.randn(3, 4)
            x[0, 0] = float("nan")
            loss = model(x).sum()
            loss.backward()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rec.end_step(loss)
            self.assertTrue(any("not recorded" in str(w.message) for w in caught))
        _, _, steps, losses = read(self.path)
        self.assertEqual(losses, [])
        first = step_line(steps, "0", 0)
        self.assertGreater(first["activation"]["output"]["non_finite_count"], 0)
        self.assertGreater(first["params"][0]["grad"]["non_finite_count"], 0)
        with open(self.path, encoding="utf-8") as f:
            self.assertNotIn("NaN", f.read())

    def test_bad_settings_name_the_field(self):
        model = nn.Linear(2, 2)
        for kwargs, field in [
            ({"every_n_steps": 0}, "every_n_steps"),
            ({"saturation_level": 1.5}, "saturation_level"),
            ({"parameters": False}, "updates"),
        ]:
            with self.assertRaises(ValueError) as caught:
                Recorder(model, self.path, **kwargs)
            self.assertIn(f"`{field}`", str(caught.exception))
        with self.assertRaises(TypeError):
            Recorder("not a model", self.path)

    def test_ddp_is_unwrapped_and_recorded_on_rank_0(self):
        import torch.distributed as dist

        if not dist.is_available():
            self.skipTest("torch.distributed is not available")
        dist.init_process_group("gloo", init_method=f"file://{self.dir.name}/pg", rank=0, world_size=1)
        try:
            model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
            ddp = nn.parallel.DistributedDataParallel(model)
            self.assertIs(unwrap(ddp), model)
            with Recorder(ddp, self.path) as rec:
                train(ddp, rec, 2)
            _, layers, steps, _ = read(self.path)
            self.assertEqual([l["path"] for l in layers], ["0", "1", "2"])
            self.assertEqual(sorted({s["step"] for s in steps}), [0, 1])
        finally:
            dist.destroy_process_group()

    def test_fsdp_parameter_norms_are_summed_over_the_shards_and_only_rank_0_writes(self):
        import torch.distributed as dist
        import torch.multiprocessing as mp

        try:
            from torch.distributed.fsdp import fully_shard  # noqa: F401
        except ImportError:
            self.skipTest("this torch has no FSDP2 (torch.distributed.fsdp.fully_shard)")
        if not dist.is_available():
            self.skipTest("torch.distributed is not available")
        mp.spawn(_fsdp_worker, args=(2, self.dir.name), nprocs=2)
        path = os.path.join(self.dir.name, "fsdp.jsonl")
        _, layers, steps, _ = read(path)
        self.assertEqual([l["path"] for l in layers], ["0", "1", "2"])
        # The same numbers as the unsharded model on the same batch (every rank had it).
        torch.manual_seed(0)
        model = _fsdp_model()
        x, y = _fsdp_batch()
        nn.functional.cross_entropy(model(x), y).backward()
        for name in ["0", "2"]:
            line = step_line(steps, name, 0)
            for p in line["params"]:
                reference = dict(model.named_parameters())[f"{name}.{p['name']}"]
                self.assertEqual(p["grad"]["count"], reference.numel())
                self.assertAlmostEqual(p["grad"]["l2_norm"], reference.grad.norm().item(), places=5)
                self.assertAlmostEqual(p["value_norm"], reference.norm().item(), places=5)
        self.assertEqual(sorted(os.listdir(self.dir.name)), ["fsdp.jsonl", "pg"])


def _fsdp_model():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))


def _fsdp_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 4, generator=g), torch.randint(0, 2, (8,), generator=g)


def _fsdp_worker(rank, world, tmp):
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = _fsdp_model()
        for m in (model[0], model[2], model):
            fully_shard(m)
        recorder = Recorder(model, os.path.join(tmp, "fsdp.jsonl") if rank == 0 else os.path.join(tmp, "rank1.jsonl"))
        assert recorder.sharded and recorder.writes == (rank == 0)
        x, y = _fsdp_batch()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        recorder.end_step(loss)
        recorder.close()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    unittest.main()
