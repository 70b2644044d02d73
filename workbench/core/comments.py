"""Template comments that an edit can make false: recognised by key and wording, then refreshed or dropped.

The shipped recipes (recipes/, which are also the `workbench new` templates) put a few inline comments on values
that are true only for the value they were written for: `# or "lora"` on method = "full", the batch arithmetic
`# counts completions: 8 / 4 = 2 prompts per step`, `# relative to this file` on a relative path, `# SFTConfig
fields` on [train]. ``refresh`` recomputes exactly those from the recipe's current values after every edit (it is
stateless: the same values give the same text, so an untouched recipe saves byte for byte). Any other comment,
the user's own or a template comment that stays true whatever the value (`# completions per prompt (>= 2)`), is
never touched. ``name_file`` makes the header's `workbench run FILE` line name the file a recipe is saved as.

UI-free and torch-free.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Callable

from tomlkit.items import Item

# A rule: (dotted key, the template comment's wording, (recipe data, value, comment) -> the comment that is true
# now, or None to drop it). Only a comment that matches the wording is ever changed.
Rule = tuple[str, "re.Pattern[str]", Callable[[dict, Any, str], "str | None"]]


def _get(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _positive_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _method(data: dict, value: Any, comment: str) -> str | None:
    return {"full": '# or "lora" (r, alpha below)', "lora": '# or "full" (r, alpha: the adapter\'s rank and scale)'
            }.get(value)


def _per_step(data: dict, value: Any, comment: str = "") -> str | None:
    """`# counts completions: B / G = P prompts per step` (grpo-tiny) from the current batch and generations."""
    per, gens = _positive_int(value), _positive_int(_get(data, "train.num_generations"))
    if per is None or gens is None:
        return None
    if per % gens:
        return f"# counts completions: {per} / {gens} is not a whole number of prompts"
    return f"# counts completions: {per} / {gens} = {per // gens} prompts per step"


def _prompts_x(data: dict, value: Any, comment: str) -> str | None:
    """`# P prompts x G completions per step` (the demo pipeline's wording)."""
    per, gens = _positive_int(value), _positive_int(_get(data, "train.num_generations"))
    if per is None or gens is None or per % gens:
        return _per_step(data, value)
    return f"# {per // gens} prompts x {gens} completions per step"


def _when(test: Callable[[Any], bool]) -> Callable[[dict, Any, str], "str | None"]:
    """The comment stays as it is while test(value) holds; it is dropped once it does not."""
    return lambda data, value, comment: comment if test(value) else None

RULES: list[Rule] = [
    ("peft.method", re.compile(r'^#\s*or "(full|lora)"'), _method),
    ("train.per_device_train_batch_size", re.compile(r"^#\s*counts completions:"), _per_step),
    ("train.per_device_train_batch_size", re.compile(r"^#\s*\d+ prompts x \d+ completions per step"), _prompts_x),
    ("data.path", re.compile(r"^#\s*relative to this file"),
     _when(lambda v: isinstance(v, str) and not Path(v).expanduser().is_absolute())),
    ("model.from_scratch", re.compile(r"^#\s*the config only, fresh weights"), _when(lambda v: v is True)),
    ("generate.temperature", re.compile(r"^#\s*greedy"), _when(lambda v: v == 0)),
    ("train.beta", re.compile(r"^#\s*no KL to a reference"), _when(lambda v: v == 0)),
    ("model.path", re.compile(r"^#\s*the (pre-trained|SFT) model of stage \d"), _when(lambda v: v == "run:previous")),
]
TRAIN_TABLE = re.compile(r"^#\s*(\w+Config) fields")


def _item(doc, dotted: str) -> Item | None:
    node = doc
    for part in dotted.split("."):
        try:
            if part not in node:
                return None
            node = node[part]
        except TypeError:  # a value where a table was expected
            return None
    return node if isinstance(node, Item) else None


def _set_comment(item: Item, comment: str | None) -> None:
    if comment is None:
        item.trivia.comment, item.trivia.comment_ws = "", ""
    elif comment != item.trivia.comment:
        item.trivia.comment = comment
        item.trivia.comment_ws = item.trivia.comment_ws or "  "


def refresh(doc) -> None:
    """Bring the template comments of a tomlkit document in line with its values (in place)."""
    data = doc.unwrap()
    for dotted, wording, rule in RULES:
        item = _item(doc, dotted)
        if item is None or not wording.match(item.trivia.comment or ""):
            continue
        _set_comment(item, rule(data, _get(data, dotted), item.trivia.comment))
    train = _item(doc, "train")
    m = TRAIN_TABLE.match(train.trivia.comment or "") if train is not None else None
    if m:
        from workbench.core.stages import STAGES

        stage = STAGES.get(str(_get(data, "run.stage") or ""))
        cls = stage.config_class.split(":")[-1] if stage and stage.config_class else None
        if cls != m.group(1):
            _set_comment(train, f"# {cls} fields" if cls else None)


# -- the header ---------------------------------------------------------------------------------------------------
RUN_LINE = re.compile(r"^(#\s+)workbench run (<[^>]*>|\S+)(.*)$")


def header_lines(text: str) -> list[str]:
    """The comment block a recipe starts with (its description and the command that runs it)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        out.append(line)
    return out


def shown_path(path: str | Path) -> str:
    """A path as a command line in the header shows it: relative to the current folder when inside it, quoted."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            pass
    return shlex.quote(str(p))


def name_file(text: str, shown: str) -> str:
    """The recipe text with its header's `workbench run FILE` naming ``shown`` instead."""
    lines = text.split("\n")
    for i in range(len(header_lines(text))):
        m = RUN_LINE.match(lines[i])
        if m:
            lines[i] = f"{m.group(1)}workbench run {shown}{m.group(3)}"
    return "\n".join(lines)
