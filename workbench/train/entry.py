"""The training child: ``python -m workbench.train RUN_DIR`` (or under torchrun).

Reads straight down: recipe -> status -> seed -> model path -> tokenizer -> dataset -> trainer (stage builder)
-> train -> final model -> outcome. Only rank 0 writes the run directory. Any exception is recorded in
status.json (type and message) and printed in full to stdout.log, and the process exits 1.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core import trust
from workbench.core.models import parse_model_ref, run_final
from workbench.core.recipe import Recipe
from workbench.core.rundir import UNSET, RunDir, boot_time, hostname
from workbench.train.adapters import run_peft_config
from workbench.train.finalize import save_final


@dataclass
class Context:
    recipe: Recipe
    rd: RunDir
    is_main: bool
    model_path: str
    tokenizer: object = None
    dataset: object = None
    eval_dataset: object = None  # held-out rows for trl's own evaluation ([eval]; workbench/train/eval_in_training.py)
    train_kwargs: dict = field(default_factory=dict)
    peft_config: object = None
    callbacks: list = field(default_factory=list)
    stop: object = None  # StopControl
    logger: object = None  # RunLogger

    def resolve(self, key: str) -> str:
        """The folder of a model reference in the recipe (model.teacher, model.reward_model, ...)."""
        return resolve_model(self.recipe.get(key), self.rd)

    def note(self, message: str) -> None:
        """A remark for the user: printed to stdout.log and kept as a metrics event."""
        print(f"[workbench] {message}", flush=True)
        if self.logger is not None:
            self.logger.out.write({"event": "note", "message": message, "time": time.time()})

    def on_step(self, step: int) -> None:
        if self.logger is not None and self.logger.on_step:
            self.logger.on_step(step)

    def trust_remote_code(self) -> bool:
        """For a load about to happen: the model code must be what consent.json recorded (else ConsentError)."""
        return trust.remote_code_allowed(self.recipe, self.rd.path)

    def model_kwargs(self, trained: bool = False) -> dict:
        """from_pretrained keywords: remote-code consent, dtype and attention kernels for this machine
        (train/precision.py); ``trained``: the model this run trains (QLoRA loads it in 4-bit)."""
        from workbench.train import precision
        from workbench.train.adapters import quantization_config

        kw = {"trust_remote_code": self.trust_remote_code()}
        dtype = precision.load_dtype(self.recipe, trained)
        quant = quantization_config(self.recipe) if trained else None
        if quant is not None:  # the base in 4-bit on this process's GPU; other modules in the compute dtype
            dtype = dtype or quant.bnb_4bit_compute_dtype
            kw.update(quantization_config=quant, device_map={"": int(os.environ.get("LOCAL_RANK", "0"))})
        if dtype is not None:
            kw["dtype"] = dtype
        kw["attn_implementation"] = precision.attention_implementation(self.recipe, self.model_path, dtype)
        return kw

    def load_causal_lm(self, from_scratch: bool = False):
        from transformers import AutoConfig, AutoModelForCausalLM

        from workbench.core.peft_methods import unmerged_method
        from workbench.train.adapters import load_with_adapter

        kw = self.model_kwargs(trained=True)
        if from_scratch:
            config = AutoConfig.from_pretrained(self.model_path, trust_remote_code=kw["trust_remote_code"])
            return AutoModelForCausalLM.from_config(config, **kw)
        if unmerged_method(self.model_path):  # a run's prompt / prefix adapter: base + adapter, trained on
            return load_with_adapter(AutoModelForCausalLM, self.model_path, trainable=True, **kw)
        return AutoModelForCausalLM.from_pretrained(self.model_path, **kw)


def resolve_model(raw: str, rd: RunDir) -> str:
    ref = parse_model_ref(raw, lambda p: Path(p).expanduser().resolve())
    if ref.kind == "builtin":
        from workbench.train.builtin import ensure_builtin

        return str(ensure_builtin(ref.value))
    if ref.kind == "run":
        final = run_final(rd.path.parent, ref.value)  # ValueError for an id reaching outside the runs dir
        if not final.is_dir():
            raise FileNotFoundError(f"run {ref.value} has no final model ({final})")
        return str(final)
    return ref.value


def train_kwargs(recipe: Recipe, rd: RunDir) -> dict:
    from workbench.train.precision import precision_kwargs

    kw = dict(output_dir=str(rd.checkpoints), report_to="none", disable_tqdm=True, logging_steps=1,
              seed=int(recipe.get("run.seed", 0)), save_total_limit=3)
    kw.update(precision_kwargs(recipe))  # CPU: fp32; a GPU: bf16 where it has it, else fp16
    if recipe.get("peft.method") == "prefix":  # checkpointed attention drops the prefix from the mask (rules_peft)
        kw["gradient_checkpointing"] = False
    kw.update(recipe.section("train"))
    kw["output_dir"] = str(rd.checkpoints)
    ds_config = rd.path / "ds_config.json"
    if ds_config.is_file():
        kw["deepspeed"] = str(ds_config)
    if os.environ.get("WORKBENCH_VLLM_PORT"):  # the runner started this run's vLLM server (core/vllm_server.py)
        kw.update(vllm_server_host=os.environ.get("WORKBENCH_VLLM_HOST", "127.0.0.1"),
                  vllm_server_port=int(os.environ["WORKBENCH_VLLM_PORT"]))
        if os.environ.get("WORKBENCH_VLLM_GROUP_PORT"):
            kw["vllm_group_port"] = int(os.environ["WORKBENCH_VLLM_GROUP_PORT"])
    return kw


def main(run_dir: str) -> int:
    rd = RunDir(run_dir)
    recipe = Recipe.load(rd.recipe_path)
    runnerless = not rd.read_status().get("runner_pid")  # started without the runner (sbatch)
    # Global rank 0 writes metrics and samples. The status (phase, outcome) is written by one process per run
    # directory: with a runner every machine has its own run dir, so each machine's local rank 0 reports (a
    # member of a multi-node run ends with its own honest outcome); a runner-less run shares one dir.
    is_main = int(os.environ.get("RANK", "0")) == 0
    reporter = is_main if runnerless else int(os.environ.get("LOCAL_RANK", "0")) == 0
    status = rd.write_status if reporter else (lambda **kw: None)

    from workbench.core import lifecycle
    from workbench.train.callbacks import Heartbeat, RunLogger, StopControl, StopRequested

    stop = StopControl(rd, report=status)
    logger = RunLogger(rd, is_main, events=reporter)
    phase = "loading"

    def on_term(signum, frame):
        stop.signalled = True  # graceful: checkpoint and end after this step; never cut a save short
        if phase == "loading":
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    heartbeat = None
    if runnerless and reporter:
        lifecycle.try_transition(rd, lifecycle.RUNNING, lifecycle.TRAINER, runnerless=True, started=time.time(),
                                 host=hostname(), boot_time=boot_time())
        heartbeat = Heartbeat(rd)  # nobody else touches it: readers settle a stale one (preempted job)
    try:
        status(trainer_pid=os.getpid(), phase="loading")  # inside: a SIGTERM here is a clean stop, not exit 143
        import torch
        from transformers import AutoTokenizer, set_seed

        from workbench.train import data, eval_in_training
        from workbench.train.stages import BUILDERS
        from workbench.train.textdecode import escape_undecodable

        set_seed(int(recipe.get("run.seed", 0)))
        if (rd.path / "ds_config.json").is_file() and "WORLD_SIZE" in os.environ:
            # ZeRO-3: from_pretrained runs under zero.Init, which needs the process group already (FINDINGS.md)
            import deepspeed

            deepspeed.init_distributed()
        ctx = Context(recipe, rd, is_main, resolve_model(recipe.get("model.path"), rd))
        ctx.tokenizer = AutoTokenizer.from_pretrained(ctx.model_path, trust_remote_code=ctx.trust_remote_code())
        escape_undecodable(ctx.tokenizer)  # completions never hold U+FFFD: undecodable bytes read as \xNN
        ctx.dataset = data.load(recipe)
        ctx.train_kwargs = train_kwargs(recipe, rd)
        ctx.logger, ctx.stop = logger, stop
        ctx.peft_config = run_peft_config(ctx)  # None for a run's unmerged adapter: training goes on with it
        ctx.callbacks = [ctx.logger, stop]
        eval_in_training.setup(ctx)  # [eval]: held-out rows, trl's eval_dataset, the periodic generation eval
        trainer = BUILDERS[recipe.stage](ctx)
        status(phase="training", device="cuda" if torch.cuda.is_available() else "cpu")
        phase = "training"
        resume_from = rd.read_status().get("resume_from")
        if resume_from:
            step = int(Path(resume_from).name.split("-")[-1])
            logger.out.write({"event": "resume", "step": step, "checkpoint": resume_from, "time": time.time()})
            trainer.train(resume_from_checkpoint=resume_from)
        else:
            trainer.train()
        if getattr(trainer, "model", None) is not None:
            phase = "saving"
            status(phase="saving", saving_since=time.time())
            save_final(trainer, ctx)  # every rank: the trainer gathers ZeRO-3/FSDP shards for rank 0 to write
        _barrier()  # every rank waits for rank 0's save before tearing down
        outcome = "stopped" if stop.stopped else "completed"
        steps = getattr(getattr(trainer, "state", None), "global_step", None)
        if outcome == "completed" and steps == 0 and not resume_from:
            raise RuntimeError("training ended after 0 steps: the dataset yielded no training rows (check [data] "
                               "and the stage's columns, or max_length filtering)")
        status(outcome=outcome, phase="done", saving_since=UNSET)
        return 0
    except BaseException as e:  # noqa: BLE001 - recorded, then re-raised as an exit code
        if (isinstance(e, SystemExit) and stop.signalled) or isinstance(e, StopRequested):
            if isinstance(e, StopRequested):  # the trainer's own on_train_end never ran
                logger.out.write({"event": "train_end", "step": stop.last_step, "time": time.time()})
            status(outcome="stopped", phase="done", saving_since=UNSET)
            return 0
        traceback.print_exc()
        sys.stdout.flush()
        message = str(e).strip().splitlines()
        status(outcome="failed", error=f"{type(e).__name__}: {message[-1] if message else ''}".strip(),
               error_type=type(e).__name__, failed_at=time.time(), phase="done", saving_since=UNSET)
        return 1
    finally:
        _teardown_distributed()
        if heartbeat is not None:
            heartbeat.stop()
            lifecycle.status(rd)  # settle the runner-less run from the outcome just reported


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _teardown_distributed() -> None:
    # Without it, multi-process DeepSpeed runs on CPU aborted at exit after training (FINDINGS.md).
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass
