"""Sampled completions: an incremental per-step index of samples.jsonl, filters, and their rich rendering.

The per-step index lives in workbench.core.samples (UI-free; a thread worker feeds it). Rendering builds rich
``Text`` objects piece by piece, so model output (which may contain '[', control bytes or fake markup) is never
parsed as markup.
"""
from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from workbench.core.samples import SampleIndex  # noqa: F401  (the monitor's index of samples.jsonl)
from workbench.core.samples import prompt_messages, prompt_parts
from workbench.core.summary import fmt_num

FILTERS = ("all", "format failures", "correct only")
PART_RE = re.compile(r"(<reasoning>.*?</reasoning>|<answer>.*?</answer>)", re.DOTALL)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
FORMAT_RE = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def is_format_failure(row: dict) -> bool:
    rewards = row.get("rewards") or {}
    if "format" in rewards:
        return not (rewards["format"] or 0) > 0
    return not FORMAT_RE.match(_text(row.get("completion")))


def is_correct(row: dict) -> bool:
    rewards = row.get("rewards") or {}
    if "correctness" in rewards:
        return (rewards["correctness"] or 0) > 0
    return (row.get("reward") or 0) > 0


def apply_filter(rows: list[dict], name: str) -> list[dict]:
    if name == "format failures":
        return [r for r in rows if is_format_failure(r)]
    if name == "correct only":
        return [r for r in rows if is_correct(r)]
    return list(rows)


def _text(value) -> str:
    """A completion or prompt as text: chat message lists become their last message's content."""
    if isinstance(value, list):
        if not value:
            return ""
        last = value[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return "" if value is None else str(value)


def prompt_text(prompt) -> str:
    """The user's part of a prompt (drops the system prompt and chat-template role lines)."""
    messages = prompt_messages(prompt)
    if messages is not None:
        users = [m for m in messages if m.get("role") == "user"]
        return str((users or messages)[-1].get("content", ""))
    if isinstance(prompt, list):
        return _text(prompt)
    text = str(prompt or "")
    if "user\n" in text:
        text = text.rsplit("user\n", 1)[1]
    return text.removesuffix("\n").removesuffix("assistant").strip()


def prompt_head(prompt, tail: int = 200) -> Text:
    """A prompt for its group's head line: "system: … / user: …" (roles dim) for a chat prompt of several
    messages, else the user's part; each text's last ``tail`` characters."""
    parts = prompt_parts(prompt)
    if len(parts) < 2:
        return Text(CONTROL_RE.sub("·", prompt_text(prompt))[-tail:], style="bold")
    out = Text()
    for i, (role, text) in enumerate(parts):
        out.append((" / " if i else "") + f"{role}: ", style="dim")
        out.append(CONTROL_RE.sub("·", text)[-tail:], style="bold")
    return out


def highlight(text: str) -> Text:
    """Completion text with <reasoning> and <answer> parts styled; control characters shown as '·'."""
    out = Text()
    for part in PART_RE.split(CONTROL_RE.sub("·", text)):
        if not part:
            continue
        if part.startswith("<reasoning>"):
            out.append(part, style="italic cyan")
        elif part.startswith("<answer>"):
            out.append(part, style="bold green")
        else:
            out.append(part)
    return out


def render_step(rows: list[dict], max_chars: int = 600) -> Group:
    """Completions grouped by prompt, best reward first within a group; the held-out eval's ("eval": true, from an
    [eval] section) after the training batch's, with their expected answer."""
    groups: dict[tuple[bool, int], list[dict]] = {}
    for r in rows:
        g = r.get("group") if isinstance(r.get("group"), int) else -1
        groups.setdefault((bool(r.get("eval")), g), []).append(r)
    parts = []
    for (held_out, g), members in sorted(groups.items()):
        label = "eval prompt" if held_out else "prompt"
        head = Text(f"{label} {g}: " if g >= 0 else f"{label}: ", style="bold")
        head.append_text(prompt_head(members[0].get("prompt")))
        if held_out and members[0].get("expected") is not None:
            head.append(f"   expected {CONTROL_RE.sub('·', str(members[0]['expected']))[:40]}", style="dim")
        parts.append(head)
        for r in sorted(members, key=lambda r: -(r.get("reward") or 0)):
            line = Text("  ")
            line.append(f"reward {fmt_num(r.get('reward'))}", style="bold magenta")
            line.append(f"  adv {fmt_num(r.get('advantage'))}", style="dim")
            for name, value in (r.get("rewards") or {}).items():
                line.append(f"  {name} ", style="dim")
                line.append(fmt_num(value), style="green" if (value or 0) > 0 else "red")
            parts.append(line)
            text = _text(r.get("completion"))
            body = highlight(text[:max_chars] + ("…" if len(text) > max_chars else ""))
            body.pad_left(4)
            parts.append(body)
        parts.append(Text(""))
    return Group(*parts)
