"""`workbench estimate --params N` without a recipe: the activations come from the shape of a common model of that
size (never a silent 0.00), and with no shape at all the table says they are unknown."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import workbench_cmd
from workbench.core import estimate as est

GB = 1e9


def activations_gb(out: str) -> float:
    m = re.search(r"^activations\s+([\d.]+) GB per GPU \(rough", out, re.M)
    assert m, out
    return float(m.group(1))


@pytest.mark.parametrize("params,name", [(7e9, "Llama-2-7B"), (8e9, "Llama-2-7B"), (0.5e9, "Qwen2.5-0.5B"),
                                         (70e9, "Llama-3-70B"), (1e8, "GPT-2")])
def test_typical_shape_is_the_nearest_common_model(params, name):
    shape = est.typical_shape(int(params))
    assert shape.source == f"typical shape ({name})" and shape.params == int(params)
    assert shape.hidden and shape.layers and shape.heads


def test_typical_shapes_count_their_published_sizes():
    counts = {name: est.shape_from_config(cfg).params for name, cfg in est.TYPICAL_CONFIGS.items()}
    assert counts["Llama-2-7B"] == 6_738_415_616
    assert counts["Qwen2.5-0.5B"] == pytest.approx(0.494e9, rel=0.01)
    assert counts["Llama-3-70B"] == pytest.approx(70.6e9, rel=0.01)


def test_cli_params_estimates_activations_from_a_typical_shape():
    proc = subprocess.run(workbench_cmd("estimate", "--params", "7e9"), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # Llama-2-7B, micro batch 8 x 1024, checkpointing: 32 layers' inputs + one layer's full activations (a = 32)
    b, s, h, layers, a = 8, 1024, 4096, 32, 32
    expected = (layers * 2 * b * s * h + 34 * b * s * h + 5 * a * s * s * b) / GB
    assert activations_gb(out) == pytest.approx(expected, abs=0.01) and expected > 1
    assert "gradient checkpointing" in out and "typical shape (Llama-2-7B): 32 layers, hidden 4096" in out
    assert "0.00 GB per GPU (rough" not in out
    total = float(re.search(r"^total\s+([\d.]+)", out, re.M).group(1))
    assert total == pytest.approx(112.0 + expected, abs=0.01)

    longer = subprocess.run(workbench_cmd("estimate", "--params", "7e9", "--seq-len", "2048", "--micro-batch", "2",
                                          "--no-gradient-checkpointing"), capture_output=True, text=True, check=False)
    b, s = 2, 2048
    assert activations_gb(longer.stdout) == pytest.approx(layers * (34 * b * s * h + 5 * a * s * s * b) / GB, abs=0.01)
    assert "checkpointing off" in longer.stdout


def test_no_shape_means_unknown_activations_not_zero():
    e = est.estimate(int(7e9))
    assert e.activations is None and e.gpu_total == e.gpu_model_states
    table = e.table()
    assert "activations     unknown without a model shape or a recipe (pass a RECIPE)" in table
    assert "0.00 GB" not in table and "total" in table and "+ activations" in table
