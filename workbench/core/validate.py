"""Recipe validation: collect ALL problems (file, key, line, what is wrong, what to do) before anything starts.

Checks, in order: format version, sections and keys (did-you-mean), types and ranges, [train] keys against the
stage's trl config schema, the rules trl/transformers enforce when the trainer is built or takes its first steps
(rules.py, rules_stages.py: eval without a dataset, precision, GRPO batch vs num_generations, DPO losses, PPO
mini-batches, ...), the model reference, the dataset (exists, parses, has the stage's columns, every row usable,
rows enough for a batch: rules_data.py) and the reward functions (exist, right signature, their columns present).
"""
from __future__ import annotations

from pathlib import Path

from workbench.core import (datafile, models, rewards, rules, rules_data, rules_eval, rules_peft, rules_stages,
                            rules_vllm, schema)
from workbench.core.problems import BadInput, Problem, did_you_mean
from workbench.core.recipe import FORMAT_VERSION, REQUIRED, SECTIONS, KeySpec, Recipe
from workbench.core.stages import STAGES, match_format

# [train] keys the workbench owns: a recipe may not set them.
MANAGED_TRAIN_KEYS = {
    "output_dir": "the workbench puts checkpoints in the run directory (runs/<id>/checkpoints)",
    "resume_from_checkpoint": "use `workbench resume RUN` instead",
    "deepspeed": "set [launch] zero_stage (and offload_*): the workbench writes ds_config.json and starts the "
                 "processes DeepSpeed needs",
}
# A list field that trl also takes as one string (DPOConfig turns loss_type "sigmoid" into ["sigmoid"]).
LIST_OR_STRING = {("trl:DPOConfig", "loss_type")}


class Checker:
    def __init__(self, recipe: Recipe, runs_dir: Path | None, in_pipeline: bool = False, check_files: bool = True):
        self.r = recipe
        self.runs_dir = runs_dir
        self.in_pipeline = in_pipeline
        self.check_files = check_files
        self.problems: list[Problem] = []
        self.ctx: rules.RuleContext | None = None  # set by trainer_rules

    def add(self, key: str, message: str, hint: str = "", severity: str = "error") -> None:
        if key in self.r.overridden:
            self.problems.append(Problem("--set", key, message, hint, None, severity))
            return
        line = self.r.line_of(key) or (self.r.line_of(key.split(".")[0]) if key else None)
        self.problems.append(Problem(self.r.display_name, key, message, hint, line, severity))

    # -- structure -----------------------------------------------------------------------------------------
    def structure(self) -> None:
        version = self.r.get("run.format_version", FORMAT_VERSION)
        if isinstance(version, int) and version > FORMAT_VERSION:
            self.add("run.format_version", f"recipe format {version} is newer than this workbench understands "
                     f"(up to {FORMAT_VERSION})", "upgrade workbench (pip install -U workbench)")
        for name, value in self.r.data.items():
            if name not in SECTIONS:
                hint = did_you_mean(name, SECTIONS) or f"sections are {', '.join('[' + s + ']' for s in SECTIONS)}"
                self.add(name, f"unknown section [{name}]", hint)
            elif not isinstance(value, dict):
                self.add(name, f"'{name}' must be a [{name}] table, not a value", f"write [{name}] on its own line")
        for section, key in REQUIRED:
            if self.r.get(f"{section}.{key}") in (None, ""):
                self.add(f"{section}.{key}" if section in self.r.data else section,
                         f"{section}.{key} is required", _required_hint(section, key))
        for section, specs in SECTIONS.items():
            if section == "train":
                continue
            for key, value in self.r.section(section).items():
                dotted = f"{section}.{key}"
                spec = specs.get(key)
                if spec is None:
                    hint = did_you_mean(key, specs) or f"keys in [{section}]: {', '.join(specs)}"
                    self.add(dotted, f"unknown key '{key}' in [{section}]", hint)
                    continue
                self.typed(dotted, value, spec)

    def typed(self, dotted: str, value, spec: KeySpec) -> None:
        expected = schema.check_value(value, {"kinds": list(spec.kinds), "choices": list(spec.choices)})
        if expected:
            self.add(dotted, f"{value!r} should be {expected}", f"e.g. {dotted.split('.')[-1]} = "
                     f"{_toml_repr(spec.default if spec.default not in (None, '', []) else _example(spec))}")
            return
        if spec.choices and value not in spec.choices:
            self.add(dotted, f"{value!r} is not one of {', '.join(map(repr, spec.choices))}",
                     did_you_mean(str(value), spec.choices))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.minimum is not None and value < spec.minimum:
                self.add(dotted, f"{value} is below the minimum {spec.minimum:g}",
                         f"use a value >= {spec.minimum:g}")
            if spec.maximum is not None and value > spec.maximum:
                self.add(dotted, f"{value} is above the maximum {spec.maximum:g}",
                         f"use a value <= {spec.maximum:g}")

    # -- [train] -------------------------------------------------------------------------------------------
    def train_keys(self) -> None:
        stage = STAGES.get(self.r.stage)
        if stage is None:
            if self.r.stage:
                self.add("run.stage", f"unknown stage '{self.r.stage}'",
                         did_you_mean(self.r.stage, STAGES) or f"stages: {', '.join(STAGES)}")
            return
        train = self.r.section("train")
        if stage.config_class is None:
            if train:
                self.add("train", f"stage {stage.name} trains nothing, so [train] does not apply",
                         "remove [train]; generation settings go in [generate]")
            return
        for key, why in MANAGED_TRAIN_KEYS.items():
            if key in train:
                self.add(f"train.{key}", f"train.{key} is managed by the workbench", why)
        try:
            fields = schema.stage_fields(stage.config_class)
        except schema.SchemaUnavailable as e:
            self.add("train", f"could not check [train] keys against trl: {e}", "is trl installed?",
                     severity="warning")
            fields = {}
        for key, value in train.items():
            dotted = f"train.{key}"
            if key in MANAGED_TRAIN_KEYS:
                continue
            if fields and key not in fields:
                cls = stage.config_class.split(":")[-1]
                hint = did_you_mean(key, fields) or f"see `workbench new {stage.name} --all` for {cls}'s fields"
                self.add(dotted, f"unknown key '{key}' for {cls} (stage {stage.name})", hint)
                continue
            if fields and not (isinstance(value, str) and (stage.config_class, key) in LIST_OR_STRING):
                expected = schema.check_value(value, fields[key])
                if expected:
                    self.add(dotted, f"{value!r} should be {expected}",
                             f"default: {key} = {_toml_repr(fields[key].get('default'))}")
                    continue
            out_of_range = rules.range_problem(stage.name, key, value)
            if out_of_range:
                self.add(dotted, *out_of_range)

    def launch(self) -> None:
        launch = self.r.section("launch")
        backend, zero = launch.get("backend", "python"), launch.get("zero_stage", 0)
        nproc, machines = launch.get("num_processes", 1), launch.get("num_machines", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (zero, nproc, machines)):
            return  # type problems are reported elsewhere
        if backend == "python" and (nproc > 1 or machines > 1):
            key = "launch.num_processes" if nproc > 1 else "launch.num_machines"
            self.add(key, 'backend "python" runs one process', 'set backend = "torchrun" (or "accelerate", '
                     '"deepspeed") to run several')
        if backend == "python" and zero > 0:
            self.add("launch.zero_stage", "DeepSpeed ZeRO needs a distributed launcher",
                     'set backend = "deepspeed" (or "torchrun"); one process works too')
        if launch.get("offload_params") and zero != 3:
            self.add("launch.offload_params", "parameter offload needs ZeRO stage 3", "set zero_stage = 3")
        if launch.get("offload_optimizer") and zero == 0:
            self.add("launch.offload_optimizer", "optimizer offload needs ZeRO (stage 1, 2 or 3)",
                     "set zero_stage = 2 (or 3)")
        if machines > 1:
            if backend == "deepspeed" and not launch.get("hostfile") and not launch.get("main_address"):
                self.add("launch.num_machines", "several machines need launch.hostfile (DeepSpeed launcher) or "
                         "launch.main_address (torchrun on each machine)", "set one of them")
            elif backend in ("torchrun", "accelerate") and not launch.get("main_address"):
                self.add("launch.main_address", "several machines need the rank-0 machine's address",
                         'set main_address = "10.0.0.1" (and main_port), and machine_rank on each machine')
        rank = launch.get("machine_rank", 0)
        if isinstance(rank, int) and not isinstance(rank, bool) and rank >= machines >= 1:
            self.add("launch.machine_rank", f"machine_rank {rank} must be below num_machines ({machines})",
                     "ranks are 0 .. num_machines - 1 (0 on a single machine)")
        if launch.get("hostfile") and not self.r.resolve_path(str(launch["hostfile"])).is_file():
            self.add("launch.hostfile", f"hostfile {launch['hostfile']} not found",
                     "lines of 'hostname slots=N', one per machine")

    def trainer_rules(self) -> None:
        """What the trl config and trainer would raise at start or in the first steps (rules*.py)."""
        stage = STAGES.get(self.r.stage)
        if stage is None:
            return
        self.ctx = rules.RuleContext(self.r, stage, _safe_fields(stage.config_class) if stage.config_class else {},
                                     self.add, self.runs_dir, self.check_files)
        if stage.config_class:
            for rule in rules.TRAIN_RULES + rules_stages.STAGE_RULES + rules_vllm.VLLM_RULES + rules_peft.PEFT_RULES:
                rule(self.ctx)
        else:
            rules.launch_packages(self.ctx)
            rules_peft.method_fits_stage(self.ctx)

    # -- model, data, rewards ------------------------------------------------------------------------------
    def models(self) -> None:
        self.model("model.path")
        stage = STAGES.get(self.r.stage)
        for name in stage.needs_models if stage else ():
            key = f"model.{name}"
            if self.r.get(key) in (None, ""):
                example = {"teacher": "builtin:tiny-teacher", "reward_model": "builtin:tiny-rm"}.get(name, "...")
                self.add(key, f"stage {stage.name} needs {key}",
                         f'e.g. [model] {name} = "{example}" (or run:RUN_ID of an earlier run, or a folder)')
            else:
                self.model(key)
        for name in stage.optional_models if stage else ():
            if self.r.get(f"model.{name}"):
                self.model(f"model.{name}")

    def model(self, key: str) -> None:
        raw = self.r.get(key)
        if not isinstance(raw, str) or not raw:
            return
        ref = models.parse_model_ref(raw, self.r.resolve_path)
        if ref.kind == "builtin":
            if ref.value not in models.BUILTIN_MODELS:
                self.add(key, f"unknown built-in model '{ref.value}'",
                         did_you_mean(ref.value, models.BUILTIN_MODELS) or
                         "built-ins: " + ", ".join(f"builtin:{n}" for n in models.BUILTIN_MODELS))
        elif ref.kind == "run":
            why = models.run_id_problem(ref.value)
            if why:  # a path would reach outside the runs directory
                self.add(key, why, "name a run id from `workbench ls` (or run:previous in a pipeline)")
            else:
                self.run_model(key, ref.value)
        elif ref.kind == "local":
            for what, todo in models.folder_problems(Path(ref.value)):
                self.add(key, what, todo)
        elif models.hub_cached(ref.value) is None and not models.hub_reachable():
            self.add(key, f"'{raw}' is not a local folder, not in the Hugging Face cache "
                     f"({models.hf_hub_cache()}), and the hub cannot be reached (no network)",
                     f"download it where there is network (huggingface-cli download {raw} --local-dir DIR) "
                     f"and set {key} to that folder")

    def run_model(self, key: str, run_id: str) -> None:
        from workbench.core.rundir import RunDir  # local: rundir imports this module's siblings

        if run_id == "previous":
            if not self.in_pipeline:
                self.add(key, "run:previous means the previous stage of a pipeline",
                         "run the folder with `workbench pipeline DIR`, or name a run id")
            return
        if self.runs_dir is None:
            return
        rd = RunDir(self.runs_dir / run_id)
        if not rd.exists():
            self.add(key, f"run '{run_id}' not found in {self.runs_dir}",
                     "see `workbench ls` for run ids, or pass --runs-dir")
        elif not rd.final_model.is_dir():
            self.add(key, f"run '{run_id}' has no final model yet (state: {rd.read_status().get('state', '?')})",
                     "wait for it to complete, or use another run")

    def data(self) -> None:
        stage = STAGES.get(self.r.stage)
        columns = self.data_columns(stage)
        # Rewards are checked even when the dataset cannot be read (columns None): every problem at once.
        if stage is not None and stage.uses_rewards:
            self.rewards(columns)

    def data_columns(self, stage) -> set[str] | None:
        raw = self.r.get("data.path")
        if not isinstance(raw, str) or not raw:
            return None
        path = self.r.resolve_path(raw)
        if not path.exists() and "/" in raw and not raw.startswith((".", "/", "~")) and path.suffix == "":
            if models.hub_cached(raw, "datasets") is None and not models.hub_reachable():
                self.add("data.path", f"'{raw}' is not a local file, not in the Hugging Face cache, and the hub "
                         "cannot be reached (no network)", "download the dataset where there is network and "
                         "point data.path at a local jsonl/json/csv/parquet file")
            return None
        if not path.exists():  # named as written, at its line in the recipe, with the places looked at
            looked = [path]
            if self.r.path is not None and not Path(raw).expanduser().is_absolute():
                looked.insert(0, (self.r.path.parent / Path(raw).expanduser()).resolve())
            self.add("data.path", f"dataset file '{raw}' not found (looked at "
                     f"{' and '.join(dict.fromkeys(map(str, looked)))})",
                     "relative paths are resolved against the recipe's folder, then the current one")
            return None
        try:
            peek = datafile.peek(path)
        except BadInput as e:
            for p in e.problems:
                self.problems.append(Problem(p.file, "data.path", p.message, p.hint,
                                             p.line, p.severity))
            return None
        columns = set(peek.columns)
        fmt = match_format(stage, columns) if stage is not None else None
        if stage is not None and fmt is None:
            wanted = " or ".join("{" + ", ".join(f.columns) + "}" for f in stage.formats)
            self.add("data.path", f"{path.name} has columns {sorted(columns)}, but stage {stage.name} needs "
                     f"{wanted}", "use a dataset in that form (see assets/data/ for examples)")
        elif fmt is not None and self.ctx is not None:
            def add_data(message: str, hint: str, line: int | None, severity: str) -> None:
                self.problems.append(Problem(str(path), "data.path", message, hint, line, severity))

            rules_data.check_rows(self.ctx, path, fmt, add_data)
        return columns

    def rewards(self, columns: set[str] | None) -> None:
        funcs = self.r.get("rewards.funcs", [])
        if not isinstance(funcs, list):
            return
        stage = STAGES.get(self.r.stage)
        if not funcs and stage and "reward_model" in stage.optional_models and self.r.get("model.reward_model"):
            return  # scored by the reward model
        if not funcs:
            self.add("rewards.funcs", f"stage {self.r.stage} needs at least one reward function",
                     'e.g. [rewards] funcs = ["format", "correctness"]')
        weights = self.r.get("rewards.weights", [])
        if isinstance(weights, list) and weights and len(weights) != len(funcs):
            self.add("rewards.weights", f"{len(weights)} weights for {len(funcs)} reward functions",
                     "give one weight per function, or none")
        for i, raw in enumerate(funcs):
            if not isinstance(raw, str):
                self.add("rewards.funcs", f"rewards.funcs[{i}] = {raw!r} should be a string")
                continue
            ref = rewards.parse_reward_ref(raw, self.r.resolve_path)
            if ref.builtin:
                needed = list(rewards.BUILTIN_REWARDS[ref.builtin][0])
            elif ref.file:
                needed, problem, hint = rewards.check_reward_file(ref)
                if problem:
                    self.add("rewards.funcs", problem, hint)
                    continue
            else:
                self.add("rewards.funcs", f"unknown reward function '{raw}'",
                         did_you_mean(raw, rewards.BUILTIN_REWARDS) or
                         f"built-ins: {', '.join(rewards.BUILTIN_REWARDS)}; or 'path/to/file.py:function'")
                continue
            missing = [c for c in needed if columns is not None and c not in columns]
            if missing:
                self.add("rewards.funcs", f"reward function '{ref.name}' needs dataset column(s) {missing}, which "
                         f"the dataset lacks (columns: {sorted(columns or [])})",
                         "add the column to the data, or drop this reward function")


def validate_recipe(recipe: Recipe, runs_dir: Path | None = None, check_files: bool = True,
                    in_pipeline: bool = False) -> list[Problem]:
    c = Checker(recipe, runs_dir, in_pipeline, check_files)
    c.structure()
    c.train_keys()
    c.launch()
    c.trainer_rules()
    rules_eval.check(c)  # the [eval] section
    if check_files:
        c.models()
        c.data()
    return c.problems


def _safe_fields(cls: str) -> dict:
    try:
        return schema.stage_fields(cls)
    except schema.SchemaUnavailable:
        return {}


def _required_hint(section: str, key: str) -> str:
    return {
        ("run", "stage"): "e.g. [run] stage = \"grpo\"",
        ("model", "path"): "e.g. [model] path = \"builtin:tiny-lm\"",
        ("data", "path"): "e.g. [data] path = \"assets/data/arith-prompts.jsonl\"",
    }[(section, key)]


def _example(spec: KeySpec):
    if spec.choices:
        return spec.choices[0]
    return {"int": 1, "float": 0.1, "str": "...", "bool": False, "list": []}[spec.kinds[0]]


def _toml_repr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if v is None:
        return "(unset)"
    return repr(v)
