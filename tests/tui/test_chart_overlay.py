"""The braille chart with several series: per-series colours, a legend that wraps instead of running past the
chart (or into the next one), the x-axis label format, and an OverlayChart of several runs' histories."""
from __future__ import annotations

from workbench.core.metrics import MetricsHistory
from workbench.tui.widgets.charts import OverlayChart, draw


def width_of(line) -> int:
    return sum(len(text) for text, _ in line)


def series(n: int, label: str = "run") -> list[tuple[str, list[float], list[float]]]:
    return [(f"{label}-{i}", [0.0, 1.0, 2.0], [float(i), i + 1.0, i + 0.5]) for i in range(n)]


def test_one_series_has_no_legend_and_keeps_the_plot_height():
    lines = draw(series(1), 40, 10, "loss")
    assert lines[0] == [("loss", "bold")]
    assert len(lines) == 10


def test_the_legend_wraps_within_the_width_and_names_every_series():
    lines = draw(series(6, "grpo-lr1e-4"), 39, 14, "reward")
    assert len(lines) == 14 and all(width_of(line) <= 39 for line in lines)
    legend = "".join(text for line in lines[:4] for text, _ in line)
    assert all(f"● grpo-lr1e-4-{i}" in legend for i in range(6))
    assert lines[0][0] == ("reward", "bold")


def test_a_legend_taller_than_the_chart_allows_ends_with_a_count():
    lines = draw(series(12, "a-long-run-name"), 30, 8, "kl")
    assert len(lines) == 8 and all(width_of(line) <= 30 for line in lines)
    head = [t for line in lines[:4] for t, _ in line]
    shown = sum(1 for t in head if t.startswith("a-long-run-name"))
    assert shown >= 1 and f"+{12 - shown} more" in "".join(head)
    assert len([line for line in lines if "┤" in line[0][0] or "│" in line[0][0]]) >= 3  # plot rows remain


def test_a_label_wider_than_the_chart_is_shortened_not_cut():
    lines = draw([("x" * 80, [0.0, 1.0], [0.0, 1.0]), ("b", [0.0], [1.0])], 30, 8, "loss")
    assert all(width_of(line) <= 30 for line in lines)
    assert any(text.endswith("…") for line in lines[:3] for text, _ in line)


def test_each_series_draws_in_its_own_colour_and_x_labels_use_the_format():
    pts = [("a", [0.0, 10.0], [0.0, 0.0]), ("b", [0.0, 10.0], [1.0, 1.0])]
    lines = draw(pts, 30, 8, "m", colors=["green", "red"], x_format=lambda v: f"{v:.0f}s")
    plot_styles = {style for line in lines[1:-1] for text, style in line[1:] if text.strip()}
    assert plot_styles == {"green", "red"}
    assert lines[-1][0][0].split() == ["└0s", "10s"]


def test_overlay_chart_takes_one_series_per_run_and_keeps_a_missing_one_in_the_legend():
    a, b = MetricsHistory(), MetricsHistory()
    a.add([{"step": s, "loss": 1.0 / s} for s in range(1, 5)])
    b.add([{"step": s, "reward": 0.5} for s in range(1, 3)])
    chart = OverlayChart("loss", "loss")
    chart.show_runs([("A", "cyan", a), ("B", "magenta", b)])
    pts = chart.points(40)
    assert [label for label, _, _ in pts] == ["A", "B"]
    assert pts[0][1] == [1.0, 2.0, 3.0, 4.0] and pts[1][1] == []
    assert chart.series_keys() == ["A"]
    assert chart.points(40) is pts  # unchanged data: the cached points
    a.add([{"step": 5, "loss": 0.1}])
    assert chart.points(40)[0][1][-1] == 5.0
    lines = draw(pts, 40, 8, "loss", chart.series_colors)
    assert "● B" in "".join(t for t, _ in lines[0])
