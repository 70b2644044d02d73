"""The GPU check: `make gpu-check` (= python -m benchmarks.gpu_check) on a machine with a GPU, in under 8 minutes.

Prints one table (and writes it to benchmarks/results/gpu-check.md), bf16 everywhere, on one GPU (the first free
one, CUDA_VISIBLE_DEVICES for every child):
  SFT and GRPO tokens per second (trl's num_tokens over the logged steps after two warm-up steps) through
  `workbench run` against benchmarks/plain_sft.py / plain_grpo.py with the same values (ratio)
  GRPO with vLLM colocate against GRPO without it (workbench run; skipped with a note when vllm is not installed)
  QLoRA SFT ([peft] method = "qlora") against full SFT (skipped when bitsandbytes is not installed)
  peak GPU memory of SFT under ZeRO-0 (the SFT run above), ZeRO-2 and ZeRO-3 (deepspeed backend, one process)
  against `workbench estimate` of the same recipe (CUDA context and allocator slack included in the measurement)
  the system panel's reading (workbench.core.gpus.snapshot(), sampled every 0.25 s: the peak memory rows too)
Model: a random-initialised Qwen2-0.5B-shaped model built from a config (no download): 24 layers, hidden 896,
14 query / 2 key-value heads, MLP 4864, tied embeddings, with the built-in tokenizer's vocabulary (a few hundred
tokens instead of 151,936, so ~358M parameters instead of 494M: a random model samples any id of its vocabulary,
and every id must decode). Built once into WORK/model-qwen2-0.5b-shape (about 15 s).

Every case runs under what is left of an overall budget (BUDGET_S); a case that fails is a row saying why, and
the check goes on. Exit 0 when every case that ran passed, 1 otherwise. On a machine without a GPU it prints one
"no GPU" line and exits 0 at once (nothing heavy is imported before that).

    make gpu-check                       # or: .venv/bin/python -m benchmarks.gpu_check [--work DIR]
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from benchmarks.common import PY, ROOT

BUDGET_S = 450.0  # the whole check (8 min = 480 s, minus start-up and the table)
RESERVE_S = 10.0
QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                 tie_word_embeddings=True, hidden_act="silu")
MODEL_NAME = "model-qwen2-0.5b-shape"
SFT = dict(steps=30, batch=16, max_length=256)
GRPO = dict(steps=8, batch=32, generations=8, completion=128)
ZERO_STEPS = 6
WARMUP_STEPS = 2  # logged steps left out of tokens/s (CUDA start-up, first allocations, vLLM's first batch)
GB = 1e9


# -- measuring ------------------------------------------------------------------------------------------------------
def tokens_per_second(points: list[tuple[float, float]], skip: int = WARMUP_STEPS) -> float | None:
    """(time, cumulative num_tokens) of each logged step -> tokens per second, the first ``skip`` steps left out
    (all kept when too few)."""
    pts = points[skip:] if len(points) > skip + 1 else points
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def plain_points(lines: list[tuple[float, str]]) -> list[tuple[float, float]]:
    """trl's printed log dicts ({'loss': ..., 'num_tokens': ...}) with their arrival times."""
    out = []
    for t, line in lines:
        if line.startswith("{'loss'"):
            d = ast.literal_eval(line.strip())
            if "num_tokens" in d:
                out.append((t, float(d["num_tokens"])))
    return out


def workbench_points(metrics: Path) -> list[tuple[float, float]]:
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(float(r["time"]), float(r["num_tokens"])) for r in rows if "event" not in r and "num_tokens" in r]


class GpuSampler(threading.Thread):
    """The system panel's reading of one GPU (gpus.snapshot()) every 0.25 s: peak memory used since ``reset``."""

    def __init__(self, index: int):
        super().__init__(daemon=True)
        self.index, self.done = index, threading.Event()
        self.base = self.peak = self.max_peak = 0
        self.max_util = 0
        self.reading = None

    def _used(self) -> int | None:
        from workbench.core import gpus

        snap = gpus.snapshot()
        gpu = next((g for g in snap.gpus if g.index == self.index), None) if snap.available else None
        if gpu is None:
            return None
        self.reading = gpu
        self.max_util = max(self.max_util, gpu.utilisation)
        return gpu.memory_used

    def reset(self) -> None:
        used = self._used()
        self.base = self.peak = used or 0

    def run(self) -> None:
        while not self.done.wait(0.25):
            used = self._used()
            if used is not None:
                self.peak = max(self.peak, used)
                self.max_peak = max(self.max_peak, used)

    def peak_delta(self) -> float | None:
        return float(self.peak - self.base) if self.reading is not None else None


# -- cases ----------------------------------------------------------------------------------------------------------
class CaseFailed(Exception):
    pass


def _toml(data: dict) -> str:
    import tomlkit

    return tomlkit.dumps(data)


def sft_recipe(model: Path, steps: int = SFT["steps"], **launch) -> dict:
    return {"run": {"name": "gpu-sft", "stage": "sft"}, "model": {"path": str(model)},
            "data": {"path": str(ROOT / "assets" / "data" / "format-sft.jsonl")},
            "train": {"max_length": SFT["max_length"], "assistant_only_loss": True,
                      "per_device_train_batch_size": SFT["batch"], "learning_rate": 3e-3, "max_steps": steps,
                      "logging_steps": 1, "save_steps": 100000},
            "launch": {"mixed_precision": "bf16", **launch}}


def grpo_recipe(model: Path, **train) -> dict:
    return {"run": {"name": "gpu-grpo", "stage": "grpo", "seed": 0}, "model": {"path": str(model)},
            "data": {"path": str(ROOT / "assets" / "data" / "arith-prompts.jsonl"),
                     "system_prompt": "Respond in the format <reasoning>...</reasoning><answer>...</answer>"},
            "rewards": {"funcs": ["format", "correctness"], "weights": [1.0, 1.0]},
            "train": {"num_generations": GRPO["generations"], "per_device_train_batch_size": GRPO["batch"],
                      "temperature": 0.9, "beta": 0.04, "max_completion_length": GRPO["completion"],
                      "learning_rate": 1e-4, "max_steps": GRPO["steps"], "logging_steps": 1, "save_steps": 100000,
                      **train},
            "launch": {"mixed_precision": "bf16"}}


def kill_runs(runs: Path) -> None:
    """The runner lives in its own session: a CLI killed on timeout leaves it; end every run's groups."""
    import signal

    for status in runs.glob("*/status.json"):
        st = json.loads(status.read_text() or "{}")
        for pgid in (st.get("pgid"), st.get("vllm_pgid")):
            try:
                os.killpg(int(pgid), signal.SIGKILL) if pgid else None
            except (ProcessLookupError, PermissionError):
                pass


def run_workbench(name: str, recipe: dict, work: Path, env: dict, timeout: float, sampler: GpuSampler) -> dict:
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    path = d / "recipe.toml"
    path.write_text(_toml(recipe), encoding="utf-8")
    runs = d / "runs"
    sampler.reset()
    with open(d / "cli.log", "wb") as log:
        try:
            rc = subprocess.run([PY, "-m", "workbench", "run", str(path), "--runs-dir", str(runs)], env=env,
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            kill_runs(runs)
            raise CaseFailed(f"not done in {timeout:.0f} s (the time budget); see {d}")
    dirs = [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
    if not dirs:
        raise CaseFailed(f"workbench run exited {rc} without a run: {_last_line(d / 'cli.log')}")
    rd = dirs[0]
    st = json.loads((rd / "status.json").read_text())
    if st.get("state") != "completed":
        raise CaseFailed(f"{st.get('state')}: {st.get('error') or _last_line(rd / 'stdout.log')}")
    return {"tps": tokens_per_second(workbench_points(rd / "metrics.jsonl")), "peak": sampler.peak_delta(),
            "recipe": path, "runs": runs}


def run_plain(name: str, script: str, flags: list[str], work: Path, env: dict, timeout: float,
              sampler: GpuSampler) -> dict:
    from benchmarks.bench_training import Child

    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    sampler.reset()
    child = Child([PY, str(ROOT / script), *flags, "--out", str(out), "--gpu"], env, ROOT)
    try:
        rc = child.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CaseFailed(f"not done in {timeout:.0f} s (the time budget)")
    finally:
        child.kill()
        child.thread.join(timeout=10)
        child.save(out / "output.log")
    if rc != 0:
        raise CaseFailed(f"{script} exited {rc}: {child.text(400).strip().splitlines()[-1:]}")
    return {"tps": tokens_per_second(plain_points(child.lines)), "peak": sampler.peak_delta()}


def estimate_gb(recipe_path: Path, runs: Path) -> float:
    from workbench.core.estimate import estimate_recipe
    from workbench.core.recipe import Recipe

    return estimate_recipe(Recipe.load(recipe_path), runs).gpu_total / GB


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# -- the table ------------------------------------------------------------------------------------------------------
def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "GB":
        return f"{v:.2f} GB"
    if unit == "x":
        return f"{v:.2f} x"
    return f"{v:,.0f}{' ' + unit if unit else ''}"


def table(rows: list[tuple]) -> str:
    head = ("check", "measured", "against", "ratio", "peak GPU memory", "note")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# -- the check ------------------------------------------------------------------------------------------------------
def detect_gpu() -> tuple[int | None, str, object]:
    """(the GPU to use, why none, the snapshot): the first free GPU NVML shows, else the first; None without one."""
    from workbench.core import gpus

    snap = gpus.snapshot()
    if snap.available and snap.gpus:
        free = snap.free_indices()
        return (free[0] if free else snap.gpus[0].index), "", snap
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir() and any(proc.iterdir()):
        return 0, f"{snap.reason}: memory and the system panel's reading unavailable (pip install nvidia-ml-py)", snap
    return None, snap.reason or "no GPU", snap


def build_model(out: Path) -> int:
    """Child: the random Qwen2-0.5B-shaped model with the built-in tokenizer, saved in bf16."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from workbench.train.builtin import ensure_builtin

    tok = AutoTokenizer.from_pretrained(ensure_builtin("tiny-lm"))
    config = Qwen2Config(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **QWEN2_05B)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    (out / "READY").write_text(json.dumps({"params": params, **QWEN2_05B, "vocab_size": len(tok)}))
    print(f"built {out}: {params:,} parameters", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / ".cache" / "gpu-check"), help="scratch folder (model, runs)")
    ap.add_argument("--build-model", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_model:
        return build_model(Path(args.build_model))
    index, why, snap = detect_gpu()
    if index is None:
        print(f"gpu-check: no GPU on this machine ({why.removeprefix('no GPU: ')}); nothing measured. "
              "Run `make gpu-check` on a machine with a GPU.", flush=True)
        return 0
    started = time.monotonic()
    end = started + BUDGET_S
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": str(index), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    sampler = GpuSampler(index)
    sampler.reset()
    sampler.start()
    name = sampler.reading.name if sampler.reading else "a GPU"
    print(f"gpu-check on GPU {index} ({name}){'; ' + why if why else ''}: budget {BUDGET_S:.0f} s", flush=True)
    rows: list[tuple] = []
    failed = False

    def left(cap: float) -> float:
        return min(cap, end - time.monotonic() - RESERVE_S)

    def case(title: str, cap: float, fn):
        nonlocal failed
        t = left(cap)
        if t < 30:
            rows.append((title, "-", "-", "-", "-", "not run: the time budget is spent"))
            return None
        t0 = time.monotonic()
        print(f"[gpu-check] {title} ...", flush=True)
        try:
            out = fn(t)
        except Exception as e:  # noqa: BLE001 - one case's failure is a row; the check goes on
            failed = True
            rows.append((title, "-", "-", "-", "-", f"FAILED: {e}"))
            print(f"[gpu-check] {title}: FAILED: {e}", flush=True)
            return None
        print(f"[gpu-check] {title}: done in {time.monotonic() - t0:.0f} s", flush=True)
        return out

    model = work / MODEL_NAME
    if not (model / "READY").is_file():
        shutil.rmtree(model, ignore_errors=True)
        proc = subprocess.run([PY, "-m", "benchmarks.gpu_check", "--build-model", str(model)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=left(180))
        if proc.returncode != 0:
            print(f"gpu-check: could not build the model: {(proc.stdout + proc.stderr)[-2000:]}", flush=True)
            return 1
    sft_flags = ["--model", str(model), "--data", str(ROOT / "assets" / "data" / "format-sft.jsonl"),
                 "--max-steps", str(SFT["steps"]), "--batch-size", str(SFT["batch"]), "--max-length",
                 str(SFT["max_length"]), "--logging-steps", "1", "--save-steps", "100000"]
    grpo_flags = ["--model", str(model), "--data", str(ROOT / "assets" / "data" / "arith-prompts.jsonl"),
                  "--max-steps", str(GRPO["steps"]), "--batch-size", str(GRPO["batch"]), "--num-generations",
                  str(GRPO["generations"]), "--max-completion-length", str(GRPO["completion"]),
                  "--save-steps", "100000", "--learning-rate", "1e-4"]

    sft = case("SFT tokens/s: workbench run", 120,
               lambda t: run_workbench("sft-wb", sft_recipe(model), work, env, t, sampler))
    sft_plain = case("SFT tokens/s: plain trl", 120,
                     lambda t: run_plain("sft-plain", "benchmarks/plain_sft.py", sft_flags, work, env, t, sampler))
    if sft and sft_plain:
        rows.append((f"SFT tokens/s ({SFT['steps']} steps x {SFT['batch']} x <= {SFT['max_length']} tokens)",
                     fmt(sft["tps"]), f"plain trl {fmt(sft_plain['tps'])}", fmt(ratio(sft["tps"], sft_plain["tps"]),
                                                                               "x"),
                     f"{fmt(_gb(sft['peak']), 'GB')} / plain {fmt(_gb(sft_plain['peak']), 'GB')}",
                     "workbench / plain; budget 1 / 1.02"))
    grpo = case("GRPO tokens/s: workbench run", 150,
                lambda t: run_workbench("grpo-wb", grpo_recipe(model), work, env, t, sampler))
    grpo_plain = case("GRPO tokens/s: plain trl", 150,
                      lambda t: run_plain("grpo-plain", "benchmarks/plain_grpo.py", grpo_flags, work, env, t, sampler))
    if grpo and grpo_plain:
        rows.append((f"GRPO tokens/s ({GRPO['steps']} steps, {GRPO['batch']} completions x {GRPO['completion']})",
                     fmt(grpo["tps"]), f"plain trl {fmt(grpo_plain['tps'])}",
                     fmt(ratio(grpo["tps"], grpo_plain["tps"]), "x"),
                     f"{fmt(_gb(grpo['peak']), 'GB')} / plain {fmt(_gb(grpo_plain['peak']), 'GB')}",
                     "workbench / plain"))
    zero = {0: sft}
    for stage in (2, 3):
        zero[stage] = case(f"SFT under ZeRO-{stage}", 120, lambda t, s=stage: run_workbench(
            f"sft-zero{s}", sft_recipe(model, ZERO_STEPS, backend="deepspeed", zero_stage=s, num_processes=1),
            work, env, t, sampler))
    for stage, got in zero.items():
        if got:
            est = estimate_gb(got["recipe"], got["runs"])
            rows.append((f"peak GPU memory, SFT ZeRO-{stage}", fmt(_gb(got["peak"]), "GB"), f"estimate {est:.2f} GB",
                         fmt(ratio(_gb(got["peak"]), est), "x"), "-",
                         "measured = NVML used minus before the run (CUDA context included); one process"))
    if importlib.util.find_spec("bitsandbytes") is None:
        rows.append(("QLoRA SFT tokens/s", "-", "-", "-", "-", "skipped: bitsandbytes is not installed"))
    else:
        q = sft_recipe(model)
        q["peft"] = {"method": "qlora", "r": 16, "alpha": 32}
        qlora = case("QLoRA SFT tokens/s", 120, lambda t: run_workbench("sft-qlora", q, work, env, t, sampler))
        if qlora:
            rows.append(("QLoRA SFT tokens/s", fmt(qlora["tps"]), f"full SFT {fmt(sft['tps'] if sft else None)}",
                         fmt(ratio(qlora["tps"], sft["tps"] if sft else None), "x"), fmt(_gb(qlora["peak"]), "GB"),
                         "4-bit NF4 base, LoRA r 16"))
    if importlib.util.find_spec("vllm") is None:
        rows.append(("GRPO + vLLM colocate tokens/s", "-", "-", "-", "-",
                     "skipped: vllm is not installed (pip install 'workbench[vllm]')"))
    else:
        fast = case("GRPO + vLLM colocate tokens/s", 240, lambda t: run_workbench("grpo-vllm", grpo_recipe(
            model, use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3,
            vllm_max_model_length=512), work, env, t, sampler))
        if fast:
            rows.append(("GRPO + vLLM colocate tokens/s", fmt(fast["tps"]),
                         f"without vLLM {fmt(grpo['tps'] if grpo else None)}",
                         fmt(ratio(fast["tps"], grpo["tps"] if grpo else None), "x"), fmt(_gb(fast["peak"]), "GB"),
                         "vllm_gpu_memory_utilization 0.3; workbench run"))
    sampler.done.set()
    g = sampler.reading
    if g is not None:
        rows.append(("system panel (gpus.snapshot)", f"{g.name}, {g.memory_total / GB:.0f} GB",
                     f"peak used {sampler.max_peak / GB:.1f} GB", "-", "-", f"max utilisation {sampler.max_util} %"))
    text = (f"GPU check, {time.strftime('%Y-%m-%d %H:%M')}, GPU {index} ({name}), bf16, "
            f"{time.monotonic() - started:.0f} s\n\n" + table(rows) + "\n")
    print("\n" + text, flush=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "gpu-check.md").write_text(text, encoding="utf-8")
    return 1 if failed else 0


def _gb(v: float | None) -> float | None:
    return None if v is None else v / GB


if __name__ == "__main__":
    raise SystemExit(main())
