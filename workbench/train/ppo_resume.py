"""PPO that checkpoints where a stop was asked for and resumes: trl 1.12's experimental PPOTrainer, resumable.

trl's ``PPOTrainer.train()`` takes no arguments, zeroes its step counter, saves only the policy, and checks
``should_save`` after ``on_step_end``, where StopControl raises StopRequested (trl's loop ignores
``should_training_stop``). ``ResumablePPOTrainer`` keeps trl's update loop as it is and adds around it:

  checkpoint-N/        policy (``save_pretrained``; the adapter only under LoRA) and tokenizer
    value_model/       the value model (``save_pretrained``)
    optimizer.pt       one optimizer over policy + value;  scheduler.pt
    rng_state.pth      python/numpy/torch RNG (rng_state_R.pth per process when distributed)
    trainer_state.json written LAST: a folder without it is an unfinished checkpoint (the supervisor skips it)

- ``train(resume_from_checkpoint=DIR)`` restores all of that, then runs only the updates left; a first callback
  puts the step and episode counters back when trl's loop has just zeroed them, so metrics continue from N and
  the run ends at the same update count as an uninterrupted one.
- A StopRequested out of the loop saves checkpoint-N of the update just finished, fires ``on_save``, re-raises.
- ``save_total_limit`` keeps that many complete checkpoints (oldest removed, trainer_state.json first).

Not covered: DeepSpeed and FSDP engines (their checkpoints are trl/Trainer's own; resuming one raises).
Heavy side: imports torch and trl; build_ppo imports this module lazily.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl.experimental.ppo import PPOTrainer
from trl.experimental.ppo.ppo_trainer import OnlineTrainerState

from workbench.train.callbacks import StopRequested

STATE_FILE = "trainer_state.json"  # its presence marks a complete checkpoint
VALUE_DIR = "value_model"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"


def checkpoint_step(path: Path) -> int | None:
    tail = path.name.rsplit("-", 1)[-1]
    return int(tail) if path.name.startswith("checkpoint-") and tail.isdigit() else None


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """checkpoint-N folders holding trainer_state.json, by step."""
    found = [p for p in Path(output_dir).glob("checkpoint-*")
             if checkpoint_step(p) is not None and (p / STATE_FILE).is_file()]
    return sorted(found, key=checkpoint_step)


class _ContinueFrom(TrainerCallback):
    """First in the callback list on a resume. trl's train() sets global_step = episode = 0 and max_steps to the
    updates it will run just before on_train_begin; this puts the restored counters back before anyone reads
    them (RunLogger's train_begin event carries step N and the full max_steps)."""

    def __init__(self, saved: OnlineTrainerState, max_steps: int):
        self.saved, self.max_steps = saved, max_steps
        self.begin_episode, self.begin_time = saved.episode, time.time()

    def on_train_begin(self, args, state, control, **kw):
        for name in ("global_step", "episode", "epoch", "log_history", "total_flos"):
            setattr(state, name, getattr(self.saved, name))
        state.max_steps = self.max_steps
        self.begin_time = time.time()

    def on_log(self, args, state, control, logs=None, **kw):
        # trl's `eps` divides all episodes so far by this attempt's time alone; count this attempt's episodes
        if logs is not None and "eps" in logs:
            logs["eps"] = int((state.episode - self.begin_episode) / max(time.time() - self.begin_time, 1e-6))


class ResumablePPOTrainer(PPOTrainer):
    def train(self, resume_from_checkpoint: str | os.PathLike | None = None):
        total = self.args.num_total_batches
        hook = None
        if resume_from_checkpoint:
            saved = self.load_checkpoint(resume_from_checkpoint)
            hook = _ContinueFrom(saved, total)
            self.callback_handler.callbacks.insert(0, hook)
            self.args.num_total_batches = max(0, total - saved.global_step)  # trl's loop runs range(1, this + 1)
        try:
            super().train()
        except StopRequested:
            # raised in on_step_end: the update, the step count and the LR step are done; trl's save was next
            self._save_checkpoint(self.model, trial=None)
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)
            raise
        finally:
            self.args.num_total_batches = total
            if hook is not None:
                self.callback_handler.remove_callback(hook)

    # -- saving ------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._save_checkpoint(model, trial)
        acc = self.accelerator
        out = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        main = self.args.should_save
        if main:
            if out.exists():  # an unfinished one from a killed attempt, or a stale one past a resume point
                shutil.rmtree(out)
            wrapper = acc.unwrap_model(self.model)
            wrapper.policy.save_pretrained(out)
            wrapper.value_model.save_pretrained(out / VALUE_DIR)
            self.processing_class.save_pretrained(out)
            torch.save(self.optimizer.state_dict(), out / OPTIMIZER_FILE)
            torch.save(self.lr_scheduler.state_dict(), out / SCHEDULER_FILE)
        acc.wait_for_everyone()
        self._save_rng_state(str(out))  # every process its own file when distributed
        acc.wait_for_everyone()
        if main:
            tmp = out / (STATE_FILE + ".tmp")
            self.state.save_to_json(str(tmp))
            os.replace(tmp, out / STATE_FILE)
            self._drop_old_checkpoints(out)

    def _drop_old_checkpoints(self, newest: Path) -> None:
        limit = self.args.save_total_limit
        if not limit or limit <= 0:
            return
        older = [p for p in complete_checkpoints(newest.parent) if p != newest]
        for old in older[: max(0, len(older) - (limit - 1))]:
            (old / STATE_FILE).unlink(missing_ok=True)  # never complete-looking while half deleted
            shutil.rmtree(old, ignore_errors=True)

    # -- loading -----------------------------------------------------------------------------------------------
    def load_checkpoint(self, path: str | os.PathLike) -> OnlineTrainerState:
        """Restore policy, value model, optimizer, LR scheduler and RNG from checkpoint-N; returns its saved state
        (``train(resume_from_checkpoint=...)`` calls this and continues from ``global_step``)."""
        path = Path(path)
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError("resuming PPO under DeepSpeed or FSDP is not supported: start a new run from the "
                             "checkpoint's policy instead")
        if not (path / STATE_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
        if not (path / VALUE_DIR).is_dir():
            raise ValueError(f"{path} holds no {VALUE_DIR}/ (written by trl's own PPO save): it cannot be resumed")
        wrapper = self.accelerator.unwrap_model(self.model)
        load_weights(wrapper.policy, path)
        load_weights(wrapper.value_model, path / VALUE_DIR)
        self.optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
        self.lr_scheduler.load_state_dict(torch.load(path / SCHEDULER_FILE, weights_only=True))
        self._load_rng_state(str(path))
        with open(path / STATE_FILE, encoding="utf-8") as f:
            saved = json.load(f)
        fields = OnlineTrainerState.__dataclass_fields__
        return OnlineTrainerState(**{k: v for k, v in saved.items() if k in fields})


def load_weights(model, folder: Path) -> None:
    """Copy a ``save_pretrained`` folder's tensors into ``model`` in place (the optimizer keeps its parameters).

    A PEFT model takes its adapter file; a plain model its safetensors file(s). Keys missing from the file are
    allowed only where they share storage with a loaded tensor (tied embeddings, dropped on save)."""
    from safetensors.torch import load_file

    adapter = folder / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(str(adapter)))
        if getattr(result, "unexpected_keys", None):
            raise ValueError(f"{adapter}: tensors the model lacks: {result.unexpected_keys[:5]}")
        return
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    own = model.state_dict()
    loaded: set[str] = set()
    for name in files:
        tensors = load_file(str(folder / name))
        result = model.load_state_dict(tensors, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{folder / name}: tensors the model lacks: {result.unexpected_keys[:5]}")
        loaded.update(tensors)
    loaded_storage = {own[k].data_ptr() for k in loaded if k in own}
    missing = [k for k in own if k not in loaded and own[k].data_ptr() not in loaded_storage]
    if missing:
        raise ValueError(f"{folder}: the checkpoint lacks {len(missing)} of the model's tensors, e.g. {missing[:5]}")
