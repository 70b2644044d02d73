"""The same faults on the real trainer (sft-tiny, CPU): SIGTERM of the whole process group (a shutdown, a
scheduler's preemption) and then, in the resumed attempt, SIGKILL of the trainer (what the out-of-memory killer
does), each at a random step; every time `resume` goes on from the last complete checkpoint, and the run ends at
max_steps with one continuous line of metrics. One run, three attempts: about a minute."""
from __future__ import annotations

import pytest

from tests.conftest import RECIPES
from tests.faults.harness import FINAL_WITHIN_S
from workbench.core.recipe import Recipe

pytestmark = pytest.mark.e2e

MAX_STEPS, SAVE_STEPS = 16, 3


def test_real_trainer_sigterm_then_sigkill_each_resumed(runs, tally, rng):
    recipe = Recipe.load(RECIPES / "sft-tiny.toml")
    recipe.apply_overrides([f"train.max_steps={MAX_STEPS}", f"train.save_steps={SAVE_STEPS}", "train.logging_steps=1"])
    run = runs.launch_recipe(recipe)

    at = run.wait_step(rng.randint(3, 7), timeout=180)
    with tally.fault(f"SIGTERM to the real run's process group at step {at}"):
        run.inject("SIGTERM", "group")
        run.check_ended("stopped", run.wait_final(FINAL_WITHIN_S * 4))  # it finishes the step and checkpoints
        run.stop_checkpoint_is_at_the_stop()
        resumed_from = int(run.start_resume().name.split("-")[-1])
        assert resumed_from == at or resumed_from == at + 1, "the stop's own checkpoint"

    at = run.wait_step(rng.randint(resumed_from + 2, MAX_STEPS - 3), timeout=180)
    with tally.fault(f"SIGKILL to the real trainer at step {at}") as fault:
        run.inject("SIGKILL", "trainer")
        st = run.check_ended("killed")
        assert "SIGKILL" in st["error"]
        fault.resumed_to_max = run.resume_to_max()
