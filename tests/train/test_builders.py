"""BUILDERS resolves each declared stage's builder (workbench/core/stages.py) lazily, and its config class exists."""
from __future__ import annotations

import importlib

import pytest

pytest.importorskip("trl")

from workbench.core.stages import STAGES  # noqa: E402
from workbench.train.stages import BUILDERS  # noqa: E402


def test_builders_are_the_declared_stages():
    assert list(BUILDERS) == list(STAGES) and len(BUILDERS) == len(STAGES)
    with pytest.raises(KeyError):
        BUILDERS["no-such-stage"]


@pytest.mark.parametrize("name", list(STAGES))
def test_declared_builder_and_config_class_import(name):
    stage = STAGES[name]
    assert callable(BUILDERS[name])
    assert BUILDERS[name].__name__ == stage.builder.split(":")[1]
    if stage.config_class:
        module, cls = stage.config_class.split(":")
        config = getattr(importlib.import_module(module), cls)
        fields = getattr(config, "__dataclass_fields__", {})
        assert set(stage.defaults) <= set(fields), "the builder defaults are fields of the config"
        assert set(stage.key_fields) <= set(fields)
        assert all(fields[k].default == v for k, v in stage.trl_defaults.items()), "trl's defaults, as declared"
