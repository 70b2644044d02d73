"""The stage builders: ``build(ctx) -> trainer`` (anything with ``train()``), one per stage.

Which builder a stage uses is its declaration's ``builder`` ("module:function", workbench.core.stages.STAGES);
``BUILDERS[stage]`` imports that module only when a run of the stage asks for it.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Callable

from workbench.core.stages import STAGES


def resolve(spec: str) -> Callable:
    """The function a "module:function" string names."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class _Builders(Mapping):
    """stage name -> builder, resolved from the stage declarations on first use."""

    def __getitem__(self, stage: str) -> Callable:
        known = STAGES.get(stage)
        if known is None or not known.builder:
            raise KeyError(stage)
        return resolve(known.builder)

    def __iter__(self):
        return (name for name, s in STAGES.items() if s.builder)

    def __len__(self) -> int:
        return sum(1 for s in STAGES.values() if s.builder)


BUILDERS = _Builders()
