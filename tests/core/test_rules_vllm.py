"""vLLM generation checked before launch (workbench/core/rules_vllm.py): a GPU present (NVML through a stand-in),
trl's mode constraints, and server mode's GPUs (on this machine, each once, disjoint from the trainer's)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.conftest import RECIPES
from workbench.core import gpus, models, rules_vllm
from workbench.core.recipe import Recipe
from workbench.core.validate import validate_recipe

GIB = 1024 ** 3


class FakeNvml:
    """The NVML calls gpus.snapshot makes, for ``n`` idle GPUs of ``total`` bytes each."""

    def __init__(self, n: int, total: int = 80 * GIB):
        self.n, self.total = n, total

    def nvmlDeviceGetCount(self):
        return self.n

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=0, total=self.total)

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=0)


@pytest.fixture
def machine(monkeypatch):
    """machine(n, total): this machine shows n GPUs (0: none) through NVML."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def set_gpus(n: int, total: int = 80 * GIB) -> None:
        gpus.use_nvml(FakeNvml(n, total))

    yield set_gpus
    gpus.use_nvml(None)


def grpo(**sets) -> Recipe:
    r = Recipe.load(RECIPES / "grpo-tiny.toml")
    for key, value in sets.items():
        r.set(key.replace("__", "."), value)
    return r


def vllm_problems(recipe: Recipe, tmp_path) -> list:
    problems = validate_recipe(recipe, tmp_path / "runs")
    return [p for p in problems if "vllm" in p.key or "vLLM" in p.message or p.key in ("model.path", "train.use_cpu")]


def has(problems, key: str, phrase: str, severity: str = "error") -> bool:
    hits = [p for p in problems if p.key == key and phrase in f"{p.message} {p.hint}" and p.severity == severity]
    assert all(p.hint for p in hits)
    return bool(hits)


SERVER = {"train__use_vllm": True, "train__vllm_mode": "server"}


def shown(problems) -> str:
    return "\n".join(p.format() for p in problems)


def test_no_gpu_here(machine, tmp_path):
    machine(0)
    ps = vllm_problems(grpo(train__use_vllm=True, train__use_cpu=True), tmp_path)
    assert has(ps, "train.use_vllm", "vLLM generation needs a GPU, and this machine shows none"), shown(ps)
    assert has(ps, "train.use_cpu", "would not use the GPU"), shown(ps)


def test_a_good_server_recipe_has_no_vllm_problem(machine, tmp_path, monkeypatch):
    machine(3)
    monkeypatch.setattr(models, "builtin_dir", lambda name: tmp_path)  # "built"
    (tmp_path / "config.json").write_text("{}")
    ps = vllm_problems(grpo(**SERVER, vllm__server_gpus=[2], vllm__port=8123), tmp_path)
    assert [p for p in ps if "not installed" not in p.message] == [], shown(ps)


def test_colocate_tensor_parallel_divides_the_processes(machine, tmp_path):
    machine(4)
    r = grpo(train__use_vllm=True, train__vllm_tensor_parallel_size=4, launch__backend="torchrun",
             launch__num_processes=2)
    ps = vllm_problems(r, tmp_path)
    assert has(ps, "train.vllm_tensor_parallel_size", "must divide the number of training processes (2)"), shown(ps)


def test_memory_share_range(machine, tmp_path):
    machine(1)
    ps = vllm_problems(grpo(train__use_vllm=True, train__vllm_gpu_memory_utilization=1.2), tmp_path)
    assert has(ps, "train.vllm_gpu_memory_utilization", "must be <= 1"), shown(ps)


def test_colocate_leaves_too_little_memory_for_training(machine, tmp_path):
    machine(1, total=GIB // 64)  # a 16 MiB "GPU": vLLM's 0.9 leaves less than the tiny model's training needs
    ps = vllm_problems(grpo(train__use_vllm=True, train__vllm_gpu_memory_utilization=0.9), tmp_path)
    assert has(ps, "train.vllm_gpu_memory_utilization", "workbench estimate", "warning"), shown(ps)


def test_server_mode_without_server_gpus_warns(machine, tmp_path):
    machine(2)
    ps = vllm_problems(grpo(**SERVER), tmp_path)
    assert has(ps, "train.vllm_mode", "the workbench starts no server", "warning"), shown(ps)


@pytest.mark.parametrize("sets, count, key, phrase", [
    ({"vllm__server_gpus": [5]}, 2, "vllm.server_gpus", "GPU 5 does not exist: this machine has 2 GPU(s)"),
    ({"vllm__server_gpus": [0, 1]}, 2, "vllm.server_gpus", "leave 0 GPU(s) [] for training"),
    ({"vllm__server_gpus": [1], "launch__backend": "torchrun", "launch__num_processes": 2}, 2, "vllm.server_gpus",
     "num_processes = 2 needs 2"),
    ({"vllm__server_gpus": [1, 1]}, 3, "vllm.server_gpus", "names a GPU twice"),
    ({"vllm__server_gpus": [-1]}, 3, "vllm.server_gpus", "should be GPU indices"),
    ({"vllm__server_gpus": [1], "train__vllm_server_port": 9000}, 2, "train.vllm_server_port",
     "managed by the workbench"),
    ({"vllm__server_gpus": [1], "train__vllm_tensor_parallel_size": 2}, 2, "train.vllm_tensor_parallel_size",
     "does not apply"),
    ({"vllm__server_gpus": [1, 2, 3]}, 4, "vllm.server_gpus", "4 attention heads over 3 GPUs"),
    ({"vllm__server_gpus": [1], "launch__backend": "torchrun", "launch__num_machines": 2,
      "launch__main_address": "10.0.0.1"}, 2, "vllm.server_gpus", "only for a single-machine run"),
])
def test_server_gpus(machine, tmp_path, sets, count, key, phrase):
    machine(count)
    ps = vllm_problems(grpo(**SERVER, **sets), tmp_path)
    assert has(ps, key, phrase), shown(ps)


def test_server_gpus_hidden_by_cuda_visible_devices(machine, tmp_path, monkeypatch):
    machine(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    ps = vllm_problems(grpo(**SERVER, vllm__server_gpus=[1]), tmp_path)
    assert has(ps, "vllm.server_gpus", "GPU 1 is hidden by CUDA_VISIBLE_DEVICES (visible: [0])"), shown(ps)


def test_the_server_needs_a_built_model(machine, tmp_path, monkeypatch):
    machine(2)
    monkeypatch.setattr(models, "builtin_dir", lambda name: tmp_path / "not-built")
    ps = vllm_problems(grpo(**SERVER, vllm__server_gpus=[1]), tmp_path)
    assert has(ps, "model.path", "python -m workbench.train.builtin tiny-chat"), shown(ps)


def test_vllm_section_where_it_does_nothing(machine, tmp_path):
    machine(2)
    ps = vllm_problems(grpo(vllm__server_gpus=[1]), tmp_path)
    assert has(ps, "vllm", "used only with train.use_vllm = true", "warning"), shown(ps)
    sft = Recipe.load(RECIPES / "sft-tiny.toml")
    sft.set("vllm.server_gpus", [1])
    sft.set("vllm.args", ["--enforce-eager", 3])
    ps = vllm_problems(sft, tmp_path)
    assert has(ps, "vllm", "[vllm] applies to stages grpo, rloo, not sft"), shown(ps)
    assert has(ps, "vllm.args", "should be strings"), shown(ps)


def test_unknown_vllm_keys_and_values(machine, tmp_path):
    machine(2)
    ps = validate_recipe(grpo(train__use_vllm=True, train__vllm_model_impl="vlm", vllm__server_gpu=[1]),
                         tmp_path / "runs")
    assert has(ps, "train.vllm_model_impl", "did you mean 'vllm'"), shown(ps)
    assert has(ps, "vllm.server_gpu", "did you mean 'server_gpus'"), shown(ps)


def test_unsupported_vllm_version_warns(machine, tmp_path, monkeypatch):
    machine(1)
    monkeypatch.setattr(rules_vllm, "_installed_version", lambda dist: (0, 30, 1))
    ps = vllm_problems(grpo(train__use_vllm=True), tmp_path)
    assert has(ps, "train.use_vllm", "vllm 0.30.1 is installed; trl supports 0.19.0 to 0.27.1", "warning"), shown(ps)


def test_every_vllm_rule_is_tested():
    text = open(__file__, encoding="utf-8").read()
    phrases = {"vllm_needs_a_gpu": "needs a GPU", "vllm_tensor_parallel": "attention heads",
               "vllm_colocate_memory": "workbench estimate", "vllm_server_mode": "managed by the workbench",
               "vllm_section": "applies to stages"}
    assert {r.__name__ for r in rules_vllm.VLLM_RULES} == set(phrases)
    assert all(p in text for p in phrases.values())


def test_server_plan_maps_the_recipe(tmp_path, monkeypatch):
    from workbench.core import vllm_server

    monkeypatch.delenv(vllm_server.TEST_SERVER_ENV, raising=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    r = grpo(**SERVER, model__path=str(model), vllm__server_gpus=[2, 3], vllm__args=["--enforce-eager"],
             train__vllm_gpu_memory_utilization=0.8, train__vllm_max_model_length=1024)
    spec = vllm_server.plan(r, tmp_path / "runs" / "run-1")
    assert spec["argv"][1:3] == ["-m", "trl.scripts.vllm_serve"]
    flags = spec["argv"][3:]
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert pairs["--model"] == str(model) and pairs["--host"] == "127.0.0.1" and pairs["--port"] == "{port}"
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--gpu-memory-utilization"] == "0.8"
    assert pairs["--max-model-len"] == "1024" and flags[-1] == "--enforce-eager"
    assert spec["env"]["CUDA_VISIBLE_DEVICES"] == "2,3" and spec["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert vllm_server.plan(grpo(train__use_vllm=True, vllm__server_gpus=[1]), tmp_path) is None  # colocate
    assert vllm_server.visible_gpus(4, {"CUDA_VISIBLE_DEVICES": "3,1"}) == [3, 1]
    assert vllm_server.visible_gpus(4, {"CUDA_VISIBLE_DEVICES": "GPU-1234"}) is None
    assert vllm_server.training_gpus([1], [0, 1, 2]) == [0, 2]


def test_trl_vllm_serve_takes_the_planned_flags(tmp_path, monkeypatch):
    """The argv parses with `trl vllm-serve`'s own parser (trl.scripts.vllm_serve), into the values meant."""
    from trl.scripts.vllm_serve import make_parser

    from workbench.core import vllm_server

    monkeypatch.delenv(vllm_server.TEST_SERVER_ENV, raising=False)
    r = grpo(**SERVER, vllm__server_gpus=[0, 1], vllm__args=["--enforce-eager"], model__dtype="bfloat16",
             model__trust_remote_code=True, train__vllm_max_model_length=1024)
    argv = [a if a != vllm_server.PORT_TOKEN else "8123" for a in vllm_server.plan(r, tmp_path / "run")["argv"][3:]]
    args, rest = make_parser().parse_args_and_config(args=argv, return_remaining_strings=True)
    assert (args.host, args.port, args.tensor_parallel_size, args.gpu_memory_utilization) == ("127.0.0.1", 8123, 2, 0.9)
    assert (args.max_model_len, args.dtype, args.trust_remote_code) == (1024, "bfloat16", True)
    assert args.enforce_eager is True
    assert rest == []
