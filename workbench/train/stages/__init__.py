"""One builder per stage: ``build(ctx) -> trainer`` (anything with ``train()``). Keys match
workbench.core.stages.STAGES."""
from __future__ import annotations

from workbench.train.stages.curate import build_best_of_k
from workbench.train.stages.distill import build_distill, build_distill_offline
from workbench.train.stages.grpo import build_grpo, build_rloo
from workbench.train.stages.ppo import build_ppo
from workbench.train.stages.preference import build_dpo, build_kto, build_reward
from workbench.train.stages.text import build_pretrain, build_sft

BUILDERS = {
    "pretrain": build_pretrain,
    "sft": build_sft,
    "reward": build_reward,
    "dpo": build_dpo,
    "kto": build_kto,
    "ppo": build_ppo,
    "grpo": build_grpo,
    "rloo": build_rloo,
    "distill": build_distill,
    "distill-offline": build_distill_offline,
    "best-of-k": build_best_of_k,
}
