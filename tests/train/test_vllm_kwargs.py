"""Server mode reaches trl as trl's own fields: the runner's WORKBENCH_VLLM_* become GRPOConfig's vllm_server_host,
vllm_server_port and vllm_group_port (the real config class takes them)."""
from __future__ import annotations

from tests.conftest import RECIPES
from workbench.core.recipe import Recipe
from workbench.core.rundir import RunDir


def test_runner_port_becomes_the_trainers_server_fields(tmp_path, monkeypatch):
    from trl import GRPOConfig

    from workbench.train.entry import train_kwargs

    monkeypatch.setenv("WORKBENCH_VLLM_HOST", "127.0.0.1")
    monkeypatch.setenv("WORKBENCH_VLLM_PORT", "18123")
    monkeypatch.setenv("WORKBENCH_VLLM_GROUP_PORT", "18124")
    recipe = Recipe.load(RECIPES / "grpo-tiny.toml")
    recipe.apply_overrides(["train.use_vllm=true", 'train.vllm_mode="server"'])
    kw = train_kwargs(recipe, RunDir(tmp_path / "run"))
    assert (kw["vllm_server_host"], kw["vllm_server_port"], kw["vllm_group_port"]) == ("127.0.0.1", 18123, 18124)
    args = GRPOConfig(**kw)
    assert args.use_vllm and args.vllm_mode == "server" and args.vllm_server_port == 18123
