"""`workbench report`: the page and the charts of fake runs (tests/tui/conftest.make_run), read back as a browser and
an image viewer would: every image is a real chart of the run's own data, every run value is escaped."""
from __future__ import annotations

import base64
import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.tui.conftest import make_run
from workbench import cli
from workbench.core import report, report_charts
from workbench.core.report_evals import curve_points

TRICKY_RECIPE_LINE = '# note: <b>bold</b> & "quoted" \'single\'\n'
TRICKY_COMPLETION = ("<reasoning>if a < b && b > c then \"a\" & 'c'</reasoning>"
                     "<answer><script>alert('pwned')</script></answer>")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BLUE, ORANGE = report.COLORS[0], report.COLORS[1]


class Page(HTMLParser):
    """What a browser would show: the text (entities decoded), the image sources, and the tags used."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.imgs: list[str] = []
        self.tags: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def tricky_run(runs_dir: Path, run_id: str, steps: int = 8, scale: float = 1.0) -> Path:
    """make_run plus what a real run has that can break a page: launch.json with shell-hostile argv, a recipe
    comment with markup, a completion with markup and quotes (the best one of the last step)."""
    d = make_run(runs_dir, run_id, steps=steps, max_steps=steps)
    if scale != 1.0:  # another run's numbers: reward scaled
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for r in rows:
            if "reward" in r:
                r["reward"] *= scale
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "recipe.toml").write_text(TRICKY_RECIPE_LINE + (d / "recipe.toml").read_text())
    (d / "launch.json").write_text(json.dumps({
        "argv": ["python", "-m", "workbench.train", str(d), "--note=<x> & \"y\""],
        "env": {"OMP_NUM_THREADS": "1", "WORKBENCH_RUN_DIR": str(d)}, "host": "gpu-box-7",
        "python": "/opt/py/bin/python3", "cwd": "/home/me", "files": []}))
    with open(d / "samples.jsonl", "a") as f:
        f.write(json.dumps({"step": steps, "group": 9, "index": 99, "prompt": "user\nWhat is <1> & 2?\nassistant\n",
                            "completion": TRICKY_COMPLETION, "rewards": {"format": 1.0, "correctness": 4.0},
                            "reward": 5.0, "advantage": 1.1}) + "\n")
    return d


@pytest.fixture
def drawn(monkeypatch):
    """Every chart drawn while a report is written, with its Figure (the one saved to the PNG)."""
    got: dict[str, tuple] = {}
    real = report_charts.draw

    def spy(chart):
        fig = real(chart)
        got[chart.key] = (chart, fig)
        return fig

    monkeypatch.setattr(report_charts, "draw", spy)
    return got


def lines_by_gid(fig) -> dict[str, tuple[list, list, str]]:
    from matplotlib.colors import to_hex

    return {ln.get_gid(): (list(ln.get_xdata()), list(ln.get_ydata()), to_hex(ln.get_color()))
            for ln in fig.axes[0].get_lines()}


def has_color(png: Path, hex_color: str, min_pixels: int = 50) -> bool:
    """Whether the image holds at least min_pixels of (nearly) this colour: the line was really drawn."""
    import numpy as np
    from matplotlib import image
    from matplotlib.colors import to_rgb

    px = image.imread(str(png))[..., :3]
    return int((np.abs(px - np.array(to_rgb(hex_color))).max(axis=-1) < 0.03).sum()) >= min_pixels


def check_images(out: Path, page: Page) -> None:
    import numpy as np
    from matplotlib import image

    assert page.imgs
    for src in page.imgs:
        assert not src.startswith(("/", "http", "file:")), src  # relative to DIR
        png = out / src
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 8000, src
        px = image.imread(str(png))[..., :3]
        assert px.shape[0] > 300 and px.shape[1] > 600, src
        ink = (px.min(axis=-1) < 0.9).mean()  # not blank: axes, ticks, text and lines
        assert 0.01 < ink < 0.6, (src, ink)
        assert len(np.unique((px * 255).astype(int).reshape(-1, 3), axis=0)) > 20, src


def test_report_of_one_run(runs_dir, tmp_path, drawn):
    d = tricky_run(runs_dir, "20260101-000000-solo", steps=8)
    out = tmp_path / "out"
    index = report.write_report([d], out)
    assert index == out / "index.html"
    raw = index.read_text(encoding="utf-8")
    page = Page(raw)
    check_images(out, page)
    # the charts: the grpo stage's headline metrics, each from its own column of metrics.jsonl
    assert list(drawn) == ["reward", "rewards/correctness/mean", "rewards/format/mean", "loss", "kl",
                           "learning_rate"]
    steps = [float(s) for s in range(1, 9)]
    for key, expect in (("reward", [s / 10 for s in range(1, 9)]), ("loss", [1.0 / s for s in range(1, 9)]),
                        ("kl", [0.01 * s for s in range(1, 9)])):
        lines = lines_by_gid(drawn[key][1])
        label = drawn[key][0].lines[0].label
        xs, ys, color = lines[f"raw:{label}"]
        assert xs == steps and ys == pytest.approx(expect), key
        w = report_charts.smoothing_weight(8)
        assert 0 < w < 1 and lines[f"ema:{label}"][1] == pytest.approx(report_charts.ema(expect, w))
        assert color == BLUE
    assert has_color(out / "charts" / "reward.png", BLUE)
    lr = lines_by_gid(drawn["learning_rate"][1])  # a schedule: drawn as it is, no EMA
    assert list(lr) == [f"raw:{label}"] and lr[f"raw:{label}"][1] == pytest.approx([1e-4] * 8)
    # the recipe, the command, the environment and a completion: there as text, escaped in the source
    text = page.text
    assert TRICKY_RECIPE_LINE.strip() in text and 'stage = "grpo"' in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; &#x27;single&#x27;" in raw and "<b>bold" not in raw
    argv = json.loads((d / "launch.json").read_text())["argv"]
    assert shlex.join(argv) in text and "gpu-box-7" in text and "/opt/py/bin/python3" in text
    assert "OMP_NUM_THREADS" in text
    assert "if a < b && b > c then \"a\" & 'c'" in text and "<script>alert('pwned')</script>" in text
    assert "script" not in page.tags and "<script" not in raw
    assert "What is <1> & 2?" in text
    assert "junk" in text  # the worst completions of the latest steps are shown too
    # status and final metrics
    assert "completed" in text and "8/8" in text and "exit code" in text


def test_report_of_several_runs_overlays_them(runs_dir, tmp_path, drawn):
    a = tricky_run(runs_dir, "20260101-000000-alpha", steps=8)
    b = tricky_run(runs_dir, "20260101-000001-beta", steps=6, scale=3.0)
    (b / "recipe.toml").write_text((b / "recipe.toml").read_text().replace("beta = 0.04", "beta = 0.2"))
    (a / "evals").mkdir()
    (a / "evals" / "arith.json").write_text(json.dumps({
        "name": "arith", "target": "run:alpha", "data": "arith-test.jsonl", "k": 4, "temperature": 0.8,
        "max_new_tokens": 64, "time": 1.0, "summary": {
            "n_prompts": 5, "n_scored": 5, "n_completions": 20, "k": 4, "accuracy": 0.375, "format_rate": 0.9,
            "mean_length": 12.0, "truncated_rate": 0.0, "pass@k": 0.8, "maj@k": 0.6,
            "curve": [{"k": 1, "pass": 0.375, "maj": 0.375}, {"k": 2, "pass": 0.6, "maj": 0.4},
                      {"k": 4, "pass": 0.8, "maj": 0.6}]}}))
    (a / "evals" / "arith.jsonl").write_text("".join(json.dumps({
        "prompt_index": i, "sample": 0, "prompt": f"What is {i} + 1?", "completion": f"<answer>{i}</answer>",
        "answer": str(i), "expected": str(i + 1), "correct": False}) + "\n" for i in range(5)))
    (b / "evals").mkdir()
    (b / "evals" / "arith.json").write_text(json.dumps({"k_curve": {"1": 0.5, "2": 0.7, "4": 0.9},
                                                        "accuracy": 0.5}))
    (b / "evals" / "torn.json").write_text('{"summary": {"accur')
    out = tmp_path / "cmp"
    index = report.write_report([a, b], out)
    raw = index.read_text(encoding="utf-8")
    page = Page(raw)
    check_images(out, page)
    labels = report.labels_for([report.RunDir(a), report.RunDir(b)])
    chart, fig = drawn["reward"]
    lines = lines_by_gid(fig)
    xa, ya, ca = lines[f"raw:{labels[0]}"]
    xb, yb, cb = lines[f"raw:{labels[1]}"]
    assert ya == pytest.approx([s / 10 for s in range(1, 9)]) and yb == pytest.approx([3 * s / 10 for s in range(1, 7)])
    assert (ca, cb) == (BLUE, ORANGE) and lines[f"ema:{labels[1]}"][2] == ORANGE
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == labels  # one entry per run
    assert has_color(out / "charts" / "reward.png", BLUE) and has_color(out / "charts" / "reward.png", ORANGE)
    # the eval curves: pass@k of run a and the k_curve of run b, with their own points
    pass_chart, pass_fig = drawn["evals/arith.json pass@k"]
    assert [ln.label for ln in pass_chart.lines] == [labels[0]]
    assert lines_by_gid(pass_fig)[f"curve:{labels[0]}"][:2] == ([1.0, 2.0, 4.0], [0.375, 0.6, 0.8])
    assert lines_by_gid(drawn["evals/arith.json k_curve"][1])[f"curve:{labels[1]}"][:2] == (
        [1.0, 2.0, 4.0], [0.5, 0.7, 0.9])
    text = page.text
    assert "Recipe differences" in text and "train.beta" in text and "0.2" in text
    assert "0.375" in text and "unreadable JSON" in text and "5 records in evals/arith.jsonl" in text
    assert all(label in text for label in labels)


def test_embedded_report_is_one_file(runs_dir, tmp_path, capsys):
    d = tricky_run(runs_dir, "20260101-000000-embed", steps=4)
    out = tmp_path / "one-file"
    assert cli.main(["--runs-dir", str(runs_dir), "report", d.name, "-o", str(out), "--embed"]) == 0
    assert f"wrote {out / 'index.html'}" in capsys.readouterr().out
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    assert page.imgs and not (out / "charts").exists()
    for src in page.imgs:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64" and base64.b64decode(data).startswith(PNG_MAGIC)


def test_cli_report_defaults_and_refusals(runs_dir, tmp_path, capsys):
    a = tricky_run(runs_dir, "20260101-000000-one", steps=3)
    b = tricky_run(runs_dir, "20260101-000001-two", steps=3)
    assert cli.main(["--runs-dir", str(runs_dir), "report", "one"]) == 0  # one run: RUN_DIR/report
    assert (a / "report" / "index.html").is_file() and list((a / "report" / "charts").glob("*.png"))
    assert cli.main(["--runs-dir", str(runs_dir), "report", "one"]) == 0  # its own report is replaced
    assert cli.main(["--runs-dir", str(runs_dir), "report", a.name, b.name]) == 2
    assert "several runs need an output folder" in capsys.readouterr().err
    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("<html>my own page</html>")
    assert cli.main(["--runs-dir", str(runs_dir), "report", "one", "-o", str(foreign)]) == 2
    assert "not a workbench report" in capsys.readouterr().err
    assert (foreign / "index.html").read_text() == "<html>my own page</html>"
    assert cli.main(["--runs-dir", str(runs_dir), "report", "nope", "-o", str(tmp_path / "x")]) == 2


def test_a_run_with_nothing_but_a_status_still_reports(runs_dir, tmp_path):
    d = runs_dir / "20260101-000000-bare"
    d.mkdir()
    (d / "status.json").write_text(json.dumps({"state": "failed", "stage": "sft", "error": "OOM <GPU 0> & more"}))
    page = Page(report.write_report([d], tmp_path / "bare").read_text(encoding="utf-8"))
    assert "OOM <GPU 0> & more" in page.text and "no launch.json" in page.text and "no recipe.toml" in page.text
    assert not page.imgs


@pytest.mark.parametrize("shape, expect", [
    ({"1": 0.1, "4": 0.3, "2": 0.2}, {"k_curve": [(1, 0.1), (2, 0.2), (4, 0.3)]}),
    ([0.1, 0.2], {"k_curve": [(1, 0.1), (2, 0.2)]}),
    ([{"k": 2, "pass": 0.5, "maj": 0.4}, {"k": 1, "pass": 0.3, "maj": 0.3}],
     {"pass": [(1, 0.3), (2, 0.5)], "maj": [(1, 0.3), (2, 0.4)]}),
    ({"k": [1, 2], "pass@k": [0.3, 0.6]}, {"pass@k": [(1, 0.3), (2, 0.6)]}),
    ({"greedy": {"1": 0.2}, "sampled": [{"k": 1, "acc": 0.1}]}, {"greedy": [(1, 0.2)], "sampled/acc": [(1, 0.1)]}),
    ("nonsense", {}),
    ({"k": "x"}, {}),
])
def test_curves_come_in_many_shapes(shape, expect):
    assert curve_points(shape, label="k_curve") == expect
