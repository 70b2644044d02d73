"""Rules on the files a run reads: every dataset row (the stage's columns present, of the right type, non-empty,
prompt and answer in the same form), rows enough for one batch, and the model folders (config.json, chat template).

A dataset that would give the trainer zero training rows is an error naming the file and the column. Problems in
the rows point at the data file and its line; problems of the recipe (batch vs rows) at the recipe's key.

Light: the standard library (pyarrow only for parquet); no datasets/transformers import.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from workbench.core import models
from workbench.core.discovery import has_chat_template, hub_snapshot
from workbench.core.rules import RuleContext, as_int
from workbench.core.rules_stages import prompts_per_batch
from workbench.core.stages import INSTRUCTION, DataFormat

SCAN_ROWS = 200_000  # rows checked one by one (the peek already scanned the file's syntax)
# column -> the forms trl accepts: text (a string), chat (a list of {"role", "content"} messages), bool
FORMS = {"prompt": ("text", "chat"), "completion": ("text", "chat"), "chosen": ("text", "chat"),
         "rejected": ("text", "chat"), "messages": ("chat",), "text": ("text",), "instruction": ("text",),
         "output": ("text",), "label": ("bool",)}
DESCRIBE = {"text": "a string", "chat": "a list of chat messages", "bool": "true or false"}


def iter_rows(path: Path, limit: int) -> Iterator[tuple[int | None, int, dict]]:
    """(line in the file or None, row number from 1, row) for up to ``limit`` rows; stops at a malformed row
    (datafile.peek reports those)."""
    suffix, n = path.suffix.lower(), 0
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return
                if not isinstance(row, dict) or n >= limit:
                    return
                n += 1
                yield lineno, n, row
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and len(data) == 1:
            data = next(iter(data.values()))
        for n, row in enumerate(data[:limit] if isinstance(data, list) else [], 1):
            if isinstance(row, dict):
                yield None, n, row
    elif suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for n, row in enumerate(reader, 1):
                if n > limit:
                    return
                # datasets reads an empty CSV cell as a missing value
                yield reader.line_num, n, {k: (v if v != "" else None) for k, v in row.items() if k is not None}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                if n >= limit:
                    return
                n += 1
                yield None, n, row


def form_of(value) -> str:
    """text | chat | bool | empty | missing | badchat | <type name>."""
    if value is None:
        return "missing"
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return "bool" if isinstance(value, bool) else "int01"
    if isinstance(value, str):
        return "text" if value.strip() else "empty"
    if isinstance(value, list):
        if not value:
            return "empty"
        ok = all(isinstance(m, dict) and isinstance(m.get("role"), str) and ("content" in m or "tool_calls" in m)
                 for m in value)
        return "chat" if ok else "badchat"
    return type(value).__name__


@dataclass
class RowScan:
    """What the rows hold: counts, problems per (column, what) with the first place seen (a bad file gives a few
    lines, not thousands), and the forms each column takes."""
    n: int = 0
    usable: int = 0
    desirable: int = 0
    issues: dict = field(default_factory=dict)  # (column, what) -> [count, line, row, detail]
    forms: dict = field(default_factory=dict)  # column -> set of forms seen

    def note(self, col: str, what: str, line: int | None, row: int, detail: str = "") -> None:
        self.issues.setdefault((col, what), [0, line, row, detail])[0] += 1


_scans: dict[tuple, RowScan] = {}  # the editor validates on every pause in typing: scan a file once per change


def scan_rows(path: Path, fmt: DataFormat, system: bool, limit: int) -> RowScan:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, fmt.columns, system, limit)
    if key not in _scans:
        if len(_scans) >= 8:
            _scans.pop(next(iter(_scans)))
        _scans[key] = _scan(path, fmt, system, limit)
    return _scans[key]


def _scan(path: Path, fmt: DataFormat, system: bool, limit: int) -> RowScan:
    scan = RowScan(forms={col: set() for col in fmt.columns})
    csv_file = path.suffix.lower() == ".csv"
    both_text_first = None  # data.shape turns text prompt AND completion into chat when the first row has both
    for line, row_no, row in iter_rows(path, limit):
        scan.n += 1
        values = {col: row.get(col) for col in fmt.columns}
        if csv_file and isinstance(values.get("label"), str):  # pandas reads true/false (1/0) cells as such
            values["label"] = {"true": True, "false": False, "1": 1, "0": 0}.get(values["label"].strip().lower(),
                                                                              values["label"])
        forms = {col: form_of(value) for col, value in values.items()}
        if both_text_first is None:
            both_text_first = forms.get("prompt") == "text" and forms.get("completion") == "text"
        ok = True
        for col, form in forms.items():
            scan.forms[col].add(form)
            if form == "int01" and "bool" in FORMS[col]:
                forms[col] = "bool"
            elif form not in FORMS[col]:
                scan.note(col, form if form in ("missing", "empty", "badchat") else "type", line, row_no, form)
                ok = False
        mixed = _mixed(forms, system, both_text_first) if ok else ""
        if mixed:
            scan.note("prompt", "mixed", line, row_no, mixed)
        elif ok:
            scan.usable += 1
            scan.desirable += values.get("label") in (True, 1)
    return scan


def check_rows(c: RuleContext, path: Path, fmt: DataFormat, add_data: Callable) -> None:
    """Every row of a local dataset against the matched format; then rows vs batch, labels and the template."""
    max_samples = as_int(c.r.get("data.max_samples", 0)) or 0
    system = bool(c.r.get("data.system_prompt"))
    scan = scan_rows(path, fmt, system, max_samples or SCAN_ROWS)
    n, usable = scan.n, scan.usable
    if n == 0:
        return  # "dataset has no rows" is reported by datafile.peek
    where = f"its first {n} rows (data.max_samples)" if max_samples and n == max_samples else f"its {n} rows"
    if usable == 0:
        (col, what), (count, line, row_no, detail) = max(scan.issues.items(), key=lambda kv: kv[1][0])
        add_data(f"none of {where} is usable: {_why(col, what, detail, fmt)}, so the run would train on zero rows",
                 f"every row needs {' and '.join(repr(x) for x in fmt.columns)} ({_forms(fmt)})", line, "error")
        return
    for (col, what), (count, line, row_no, detail) in scan.issues.items():
        at = f"line {line}" if line else f"row {row_no}"
        share = f"{count} of {n} rows" if count > 1 else at
        severity = "warning" if what == "empty" else "error"
        add_data(f"{share}{f' (first: {at})' if count > 1 else ''}: {_why(col, what, detail, fmt)}",
                 _fix(col, what), line, severity)
    for col, forms in scan.forms.items():
        if {"text", "chat"} <= forms:
            add_data(f"'{col}' is text in some rows and chat messages in others; trl decides the form from one row",
                     "write every row in one form", None, "warning")
    enough_rows(c, path, usable, max_samples)
    if "label" in fmt.columns:
        label_balance(c, scan.desirable, usable - scan.desirable)
    conversational = any("chat" in f for f in scan.forms.values()) or system or fmt == INSTRUCTION
    if c.stage.name in ("sft", "pretrain") and c.get("assistant_only_loss") is True and not conversational:
        c.add("train.assistant_only_loss", f"assistant_only_loss needs chat data, and {path.name} is plain text "
              f"({fmt.name})", "use a messages dataset (or chat prompt/completion), or remove assistant_only_loss")
    if conversational or c.stage.always_chat:
        chat_template(c)


def _mixed(forms: dict, system: bool, both_text_first: bool) -> str:
    """Why a row mixes a text prompt with chat answers (or the reverse); "" when it does not."""
    prompt = forms.get("prompt")
    if prompt is None:
        return ""
    if system and prompt == "text":
        prompt = "chat"  # data.system_prompt makes text prompts chat
    for col in ("completion", "chosen", "rejected"):
        form = forms.get(col)
        if col == "completion" and system and form == "text" and both_text_first:
            form = "chat"
        if form and form != prompt:
            return f"the prompt is {DESCRIBE[prompt]} but '{col}' is {DESCRIBE[form]}" + \
                (" (data.system_prompt makes text prompts chat)" if system and forms["prompt"] == "text" else "")
    return ""


def _why(col: str, what: str, detail: str, fmt: DataFormat) -> str:
    if what == "missing":
        return f"no '{col}' (or null)"
    if what == "empty":
        return f"'{col}' is empty"
    if what == "badchat":
        return f"'{col}' is a list, but not of {{\"role\": ..., \"content\": ...}} messages"
    if what == "mixed":
        return detail
    found = {"text": "a string", "chat": "a list of chat messages", "bool": "true/false", "int01": "a number",
             "int": "a number", "float": "a number", "dict": "an object"}.get(detail, detail)
    return f"'{col}' is {found}, not {' or '.join(DESCRIBE[f] for f in FORMS[col])}"


def _fix(col: str, what: str) -> str:
    if what == "mixed":
        return 'write prompt and answer in one form: both strings, or both chat lists ([{"role": ..., ...}])'
    if what in ("missing", "empty"):
        return f"fill in '{col}' on those rows, or delete them"
    return f"'{col}' must be {' or '.join(DESCRIBE[f] for f in FORMS[col])}"


def _forms(fmt: DataFormat) -> str:
    return "; ".join(f"{col}: {' or '.join(DESCRIBE[f] for f in FORMS[col])}" for col in fmt.columns)


def enough_rows(c: RuleContext, path: Path, usable: int, max_samples: int) -> None:
    """Trainers that drop partial batches: GRPO/RLOO/Distillation (RepeatSampler keeps whole batches only), PPO
    (drop_last, and its loop then waits forever), any trainer with dataloader_drop_last."""
    bs, accum = c.int("per_device_train_batch_size", 8), c.int("gradient_accumulation_steps", 1)
    if not (bs and accum and bs > 0 and accum > 0):
        return
    name = c.stage.name
    if c.stage.groups:
        need, what = prompts_per_batch(c), "one generation batch takes {need} prompts (the generation batch / " \
                                            "num_generations)"
    elif name == "distill":
        need, what = bs * c.world * accum, "one generation batch takes {need} prompts (per_device_train_batch_size" \
                                           " x processes x gradient_accumulation_steps)"
    elif name == "ppo":
        need, what = bs * accum * c.world, "PPO takes whole batches of {need} prompts (per_device_train_batch_size " \
                                           "x gradient_accumulation_steps x processes) and would wait forever"
    elif c.stage.config_class and c.get("dataloader_drop_last") is True:
        need, what = bs * c.world, "dataloader_drop_last drops every partial batch of {need}"
    else:
        return
    if need and usable < need:
        first = f" (of the first {max_samples}, data.max_samples)" if max_samples else ""
        c.add("data.path", f"{path.name} has {usable} usable rows{first}, but {what.format(need=need)}: the run "
              "would have zero training steps", "add rows, or lower per_device_train_batch_size")


def label_balance(c: RuleContext, desirable: int, undesirable: int) -> None:
    """KTOTrainer's advice (its Eq. 8 bounds) when the labels are unbalanced and the weights do not make up."""
    dw, uw = c.num("desirable_weight", 1.0), c.num("undesirable_weight", 1.0)
    if dw is None or uw is None:
        return
    if not desirable or not undesirable:
        c.add("data.path", f"every usable row is labelled {'undesirable' if not desirable else 'desirable'}; KTO "
              "learns from both kinds", "add rows with label true and false", severity="warning")
        return
    if desirable == undesirable:
        return
    d_lo, d_hi = round(undesirable * uw / desirable, 2), round(undesirable * uw / desirable * 1.33, 2)
    u_lo, u_hi = round(desirable * dw / undesirable / 1.33, 2), round(desirable * dw / undesirable, 2)
    if not (d_lo <= dw <= d_hi or u_lo <= uw <= u_hi):
        c.add(c.key("desirable_weight", "undesirable_weight"), f"{desirable} desirable vs {undesirable} undesirable "
              f"rows, and the loss weights do not balance them", f"set EITHER desirable_weight in [{d_lo}, {d_hi}] "
              f"OR undesirable_weight in [{u_lo}, {u_hi}] (trl's recommendation)", severity="warning")


# -- model files -------------------------------------------------------------------------------------------------
def model_folder(c: RuleContext, key: str) -> Path | None:
    """The folder a model reference loads from, when it is on this machine (not for built-ins)."""
    raw = c.r.get(key)
    if not isinstance(raw, str) or not raw:
        return None
    ref = models.parse_model_ref(raw, c.r.resolve_path)
    if ref.kind == "local":
        return Path(ref.value)
    if ref.kind == "run" and c.runs_dir is not None and ref.value != "previous" and "/" not in ref.value \
            and ".." not in ref.value:
        return c.runs_dir / ref.value / "final"
    if ref.kind == "hub":
        return hub_snapshot(ref.value)
    return None


def model_config(c: RuleContext, key: str) -> dict | None:
    """config.json of a model reference (built-ins: their known config); None when not readable here."""
    raw = c.r.get(key)
    if isinstance(raw, str) and raw.startswith("builtin:") and raw[8:] in models.BUILTIN_SPECS:
        return models.builtin_config(raw[8:])
    folder = model_folder(c, key)
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8")) if folder else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def chat_template(c: RuleContext) -> None:
    """apply_chat_template raises when the tokenizer has no chat template; the run needs one here."""
    folder = model_folder(c, "model.path")
    if folder is not None and has_chat_template(folder) is False:
        c.add("model.path", f"{folder} has no chat template, and this run formats chat messages (chat data, "
              "data.system_prompt, or a stage that generates)", "use a chat/instruct model, or add a chat template "
              "to its tokenizer (tokenizer.chat_template, then save_pretrained)")

