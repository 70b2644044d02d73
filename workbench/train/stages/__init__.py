"""One module per stage: ``build(ctx) -> trainer``. BUILDERS maps a stage name (workbench.core.stages) to it."""
from __future__ import annotations

from workbench.train.stages import grpo, sft

BUILDERS = {"grpo": grpo.build, "sft": sft.build}
