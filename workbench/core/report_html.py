"""The report page (index.html) from what workbench.core.report gathered: plain string building, inline CSS.

Every value from a run (recipe text, argv, env, prompts, completions, eval records, metric names, errors) goes
through ``esc`` (html.escape, quotes included) where it is written; control characters are shown as '·'. Image
sources are ours (charts/NAME.png with NAME made of [A-Za-z0-9_.-], or a data URI) and escaped all the same.
No script, no external resource. Light: no matplotlib, no torch.
"""
from __future__ import annotations

import html
import json
import re
import shlex
import time

import workbench
from workbench.core.report_css import CSS
from workbench.core.summary import duration_of, fmt_duration, fmt_num

PART_RE = re.compile(r"<(reasoning|answer)>(.*?)</\1>", re.DOTALL)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_COMPLETION = 3000  # characters of a completion shown
MAX_PROMPT = 600  # characters of a prompt's user part shown (the whole prompt is in a <details>)
OVERVIEW_METRICS = 3  # headline metrics shown as columns of the runs table


def esc(value) -> str:
    return html.escape(CONTROL_RE.sub("·", "" if value is None else str(value)), quote=True)


def fmt_when(ts, short: bool = False) -> str:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


def fmt_value(v) -> str:
    return fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else ("-" if v is None else str(v))


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{esc(color)}"></span>'


def anchor(f) -> str:
    return "run-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f.rd.id)


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from cells that are already HTML."""
    h = "".join(f"<th>{c}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>'


# -- the page ------------------------------------------------------------------------------------------------
def render_page(facts: list, charts: list, eval_charts: list, meta: dict) -> str:
    several = len(facts) > 1
    title = f"{len(facts)} runs" if several else facts[0].label
    parts = [f'<header><h1>workbench report: {esc(title)}</h1><p class="meta">written {esc(fmt_when(meta["written"]))}'
             f' on {esc(meta["host"])} by workbench {esc(meta["version"])}</p></header>']
    if several:
        parts.append("<nav>" + " ".join(f'<a href="#{anchor(f)}">{swatch(f.color)}{esc(f.label)}</a>'
                                        for f in facts) + "</nav>")
    parts.append(overview(facts, charts))
    if charts:
        note = ("one colour per run: raw values faint, EMA-smoothed line strong" if several else
                "raw values faint, EMA-smoothed line strong (the weight is in the legend)")
        parts.append(f'<section><h2>Metrics</h2><p class="note">{note}; x axis: training step</p>'
                     + figures(charts) + "</section>")
    if several and charts:
        parts.append("<section><h2>Final metrics</h2>" + compare_metrics(facts, [c.key for c in charts]) + "</section>")
    if any(f.evals for f in facts):
        parts.append(evals_section(facts, eval_charts))
    if several:
        parts.append(recipe_diff_section(facts, meta.get("recipe_diff") or []))
    parts += [run_section(f, several, [c.key for c in charts]) for f in facts]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="generator" content="{esc(meta["generator"])}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>workbench report: {esc(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def overview(facts: list, charts: list) -> str:
    shown = [c.key for c in charts[:OVERVIEW_METRICS]]
    rows = []
    for f in facts:
        st, h = f.status, f.history
        step = f"{h.step}/{h.max_steps}" if h.max_steps else str(h.step)
        state = st.get("display_state") or st.get("state") or "?"
        rows.append([f'<a href="#{anchor(f)}">{swatch(f.color)}{esc(f.label)}</a>', esc(st.get("stage") or "?"),
                     esc(st.get("model") or "?"), f'<span class="state {esc(st.get("state"))}">{esc(state)}</span>',
                     esc(step), esc(fmt_when(st.get("started"), short=True)), esc(fmt_duration(duration_of(st)))]
                    + [f'<span class="num">{esc(fmt_value(h.latest.get(k)))}</span>' for k in shown])
    head = ["run", "stage", "model", "state", "step", "started", "duration"] + [
        f'<span title="{esc(c.key)}">{esc(c.title)}</span>' for c in charts[:OVERVIEW_METRICS]]
    return '<section class="wide">' + table(head, rows, "runs") + "</section>"


def figures(charts: list) -> str:
    """The charts in a grid; a caption names the metric when the chart's title (drawn in the PNG) is not its key."""
    return '<div class="grid">' + "".join(
        f'<figure><img src="{esc(c.src)}" alt="{esc(c.title)}">'
        + (f"<figcaption><code>{esc(c.key)}</code></figcaption>" if c.key != c.title else "") + "</figure>"
        for c in charts) + "</div>"


def compare_metrics(facts: list, keys: list[str]) -> str:
    rows = [[f"<code>{esc(k)}</code>"] + [f'<span class="num">{esc(fmt_value(f.history.latest.get(k)))}</span>'
                                          for f in facts] for k in keys]
    return table(["metric"] + [swatch(f.color) + esc(f.label) for f in facts], rows, "metrics")


def metric_rows(f, keys: list[str]) -> list[list[str]]:
    rows = []
    for k in keys:
        s = f.history.series.get(k)
        if s is None or not s.x0:
            continue
        rows.append([f"<code>{esc(k)}</code>"] + [f'<span class="num">{esc(fmt_num(v))}</span>'
                                                  for v in (s.last, min(s.lo), max(s.hi))] + [esc(s.count)])
    return rows


def evals_section(facts: list, eval_charts: list) -> str:
    names = sorted({ev.name for f in facts for ev in f.evals})
    rows = []
    for name in names:
        by_run = {f.label: next((ev for ev in f.evals if ev.name == name), None) for f in facts}
        keys = list(dict.fromkeys(k for ev in by_run.values() if ev for k in ev.summary))
        for k in keys:
            rows.append([f"<code>{esc(name)}</code>", f"<code>{esc(k)}</code>"]
                        + [f'<span class="num">{esc(fmt_value(ev.summary.get(k)) if ev and k in ev.summary else "—")}'
                           "</span>" for ev in by_run.values()])
    out = ["<section><h2>Evaluations</h2>"]
    if rows:
        out.append(table(["eval", "metric"] + [swatch(f.color) + esc(f.label) for f in facts], rows, "metrics"))
    notes = []
    for f in facts:
        for ev in f.evals:
            bits = [esc(ev.about)] if ev.about else []
            if ev.records is not None:
                bits.append(f"{ev.records} records in evals/{esc(ev.name)}.jsonl")
            if ev.problem:
                bits.append(f'<span class="bad">{esc(ev.problem)}</span>')
            if bits:
                notes.append(f"<li>{swatch(f.color)}{esc(f.label)} / <code>{esc(ev.name)}</code>: "
                             + "; ".join(bits) + "</li>")
    if notes:
        out.append('<ul class="note">' + "".join(notes) + "</ul>")
    if eval_charts:
        out.append(figures(eval_charts))
    return "".join(out) + "</section>"


def recipe_diff_section(facts: list, rows: list) -> str:
    head = "<section><h2>Recipe differences</h2>"
    if not rows:
        return head + '<p class="note">the recipes set the same values</p></section>'
    return head + table(["key"] + [swatch(f.color) + esc(f.label) for f in facts],
                        [[f"<code>{esc(k)}</code>"] + [f"<code>{esc(v)}</code>" for v in vs] for k, vs in rows],
                        "metrics") + "</section>"


# -- one run -------------------------------------------------------------------------------------------------
def run_section(f, several: bool, chart_keys: list[str]) -> str:
    out = [f'<section class="run" id="{anchor(f)}"><h2>{swatch(f.color)}{esc(f.label)}</h2>'
           f'<p class="meta"><code>{esc(f.rd.id)}</code> · <code>{esc(f.rd.path)}</code></p>',
           status_block(f)]
    keys = [k for k in chart_keys if k in f.history.series]
    keys += [k for k in f.history.keys() if k not in keys]  # headline metrics first, then the rest
    if keys:
        rows = metric_rows(f, keys)
        out.append(f'<details{"" if several else " open"}><summary>Final metrics ({len(rows)})</summary>'
                   + table(["metric", "final", "min", "max", "points"], rows, "metrics") + "</details>")
    for ev in f.evals:
        if ev.examples:
            out.append(f"<details><summary>Eval records: <code>{esc(ev.name)}</code> ({len(ev.examples)} of "
                       f"{esc(ev.records)}: wrong ones first)</summary>"
                       + '<div class="samples">' + "".join(record_card(r) for r in ev.examples) + "</div></details>")
    out.append(samples_block(f.samples))
    out.append(command_block(f))
    if f.recipe is None:
        out.append('<h3>Recipe</h3><p class="bad">no recipe.toml in the run directory</p>')
    else:  # several runs: folded (their differences are in a table above)
        lines = f.recipe.count("\n") + 1
        out.append(f'<details{"" if several else " open"} class="recipe"><summary>Recipe <code>recipe.toml</code> '
                   f'({lines} lines)</summary><pre class="recipe">{esc(f.recipe)}</pre></details>')
    return "".join(out) + "</section>"


def status_block(f) -> str:
    st = f.status
    state = st.get("display_state") or st.get("state") or "?"
    items = [("state", f'<span class="state {esc(st.get("state"))}">{esc(state)}</span>'),
             ("stage", esc(st.get("stage"))), ("model", f"<code>{esc(st.get('model'))}</code>"),
             ("started", esc(fmt_when(st.get("started")))), ("ended", esc(fmt_when(st.get("ended")))),
             ("duration", esc(fmt_duration(duration_of(st)))),
             ("steps", esc(f"{f.history.step}/{f.history.max_steps}" if f.history.max_steps else f.history.step))]
    for key, label in (("exit_code", "exit code"), ("signal", "signal"), ("attempt", "attempt"),
                       ("pipeline", "pipeline"), ("parent", "parent run")):
        if st.get(key) is not None:
            items.append((label, esc(st[key])))
    if st.get("error"):
        items.append(("error", f'<pre class="bad">{esc(st["error"])}</pre>'))
    if st.get("hint"):
        items.append(("hint", esc(st["hint"])))
    for note in st.get("resume_notes") or []:
        items.append(("resume note", esc(note)))
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def command_block(f) -> str:
    info = f.launch
    argv = info.get("argv") if isinstance(info.get("argv"), list) else []
    out = ["<h3>Command and environment</h3>"]
    out.append(f'<pre class="cmd">{esc(shlex.join(str(a) for a in argv))}</pre>' if argv else
               '<p class="bad">no launch.json: the command is not known</p>')
    items = [("host", info.get("host") or f.status.get("host")), ("python", info.get("python")),
             ("working directory", info.get("cwd")), ("recipe file", info.get("recipe_source")),
             ("workbench", info.get("workbench_version") or info.get("workbench") or
              f"not recorded by the run (this report: {workbench.__version__})")]
    out.append('<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>"
                                              for k, v in items if v) + "</dl>")
    env = info.get("env") if isinstance(info.get("env"), dict) else {}
    if env:
        out.append("<p>environment set for the trainer (on top of the launching shell's):</p>"
                   + table(["variable", "value"], [[f"<code>{esc(k)}</code>", f"<code>{esc(v)}</code>"]
                                                   for k, v in env.items()], "env"))
    for name, text in f.files.items():
        out.append(f"<details><summary>{esc(name)}</summary><pre>{esc(text)}</pre></details>")
    return "".join(out)


# -- completions ---------------------------------------------------------------------------------------------
def _text(value) -> str:
    """A prompt or completion as text: a chat message list becomes its last message's content."""
    if isinstance(value, list):
        last = value[-1] if value else ""
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return "" if value is None else str(value)


def user_part(prompt) -> str:
    """The user's part of a prompt (no system prompt, no chat-template role lines)."""
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1].get("content", "")) if users else _text(prompt)
    text = str(prompt or "")
    if "user\n" in text:
        text = text.rsplit("user\n", 1)[1]
    return text.removesuffix("\n").removesuffix("assistant").strip()


def completion_html(value) -> str:
    """A completion with its <reasoning> and <answer> parts set apart and labelled; the rest as it is."""
    text = _text(value)
    more = len(text) - MAX_COMPLETION
    text = text[:MAX_COMPLETION]
    out, pos = [], 0
    for m in PART_RE.finditer(text):
        if text[pos:m.start()].strip():
            out.append(f'<div class="free">{esc(text[pos:m.start()])}</div>')
        out.append(f'<div class="part {m.group(1)}"><span class="tag">{m.group(1)}</span>'
                   f'<div class="body">{esc(m.group(2).strip())}</div></div>')
        pos = m.end()
    if text[pos:].strip() or not out:
        out.append(f'<div class="free">{esc(text[pos:]) or "<em>(empty)</em>"}</div>')
    if more > 0:
        out.append(f'<p class="note">… {more} more characters</p>')
    return "".join(out)


def sample_card(row: dict, kind: str) -> str:
    bits = [f'<span class="reward">reward {esc(fmt_value(row.get("reward")))}</span>']
    for name, v in (row.get("rewards") or {}).items() if isinstance(row.get("rewards"), dict) else ():
        good = isinstance(v, (int, float)) and v > 0
        bits.append(f'<span class="fn {"good" if good else "bad"}">{esc(name)} {esc(fmt_value(v))}</span>')
    if row.get("advantage") is not None:
        bits.append(f'<span class="dim">advantage {esc(fmt_value(row.get("advantage")))}</span>')
    bits.append(f'<span class="dim">step {esc(row.get("step"))}</span>')
    prompt = user_part(row.get("prompt"))
    full = _text(row.get("prompt")) if not isinstance(row.get("prompt"), list) else "\n\n".join(
        f"[{m.get('role')}] {m.get('content')}" if isinstance(m, dict) else str(m) for m in row["prompt"])
    short = prompt[:MAX_PROMPT] + ("…" if len(prompt) > MAX_PROMPT else "")
    whole = f'<details class="small"><summary>whole prompt</summary><pre>{esc(full)}</pre></details>'
    return (f'<div class="sample {kind}"><div class="head">{" ".join(bits)}</div>'
            f'<div class="prompt"><span class="tag">prompt</span><div class="body">{esc(short)}</div></div>'
            + (whole if full != prompt else "") + completion_html(row.get("completion")) + "</div>")


def record_card(rec: dict) -> str:
    """One eval record (workbench.core.evals: prompt, completion, answer, expected, correct, ...)."""
    if "completion" not in rec:
        return f'<pre>{esc(json.dumps(rec, ensure_ascii=False, default=str)[:2000])}</pre>'
    correct = rec.get("correct")
    kind = "best" if correct is True else "worst" if correct is False else ""
    bits = [f'<span class="reward {"good" if correct else "bad"}">{"correct" if correct else "wrong"}</span>'
            if correct is not None else ""]
    for key in ("answer", "expected", "tokens", "truncated", "sample"):
        if rec.get(key) is not None:
            bits.append(f'<span class="dim">{key}</span> <code>{esc(fmt_value(rec[key]))}</code>')
    prompt = user_part(rec.get("prompt"))
    return (f'<div class="sample {kind}"><div class="head">{" ".join(b for b in bits if b)}</div>'
            f'<div class="prompt"><span class="tag">prompt</span><div class="body">{esc(prompt[:MAX_PROMPT])}</div>'
            f"</div>{completion_html(rec.get('completion'))}</div>")


def samples_block(samples: dict) -> str:
    if not samples.get("total"):
        return "<h3>Completions</h3><p class=\"note\">no sampled completions (samples.jsonl) in this run</p>"
    steps = samples["steps"]
    span = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}–{steps[-1]}"
    out = [f'<h3>Completions</h3><p class="note">from the latest sampled {esc(span)} '
           f'({esc(samples["total"])} completions): the best and the worst by total reward</p>']
    cols = [f'<div class="samples"><h4>{kind}</h4>' + "".join(sample_card(r, kind) for r in samples[kind]) + "</div>"
            for kind in ("best", "worst") if samples[kind]]
    return "".join(out) + '<div class="pair">' + "".join(cols) + "</div>"
