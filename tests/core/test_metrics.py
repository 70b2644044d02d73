"""Incremental metrics readers: complete lines only, NaN tolerated, garbage skipped, growth and truncation."""
from __future__ import annotations

import json
import os

from workbench.core.metrics import JsonlTail, MetricsHistory, read_history
from workbench.core.summary import run_summary


def append(path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def test_missing_file_is_empty(tmp_path):
    t = JsonlTail(tmp_path / "metrics.jsonl")
    assert t.read_new() == []
    append(t.path, '{"step": 1}\n')
    assert t.read_new() == [{"step": 1}]


def test_torn_last_line_waits_for_its_newline(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, '{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    t = JsonlTail(p)
    assert t.read_new() == [{"step": 1, "loss": 2.0}]
    assert t.bad_lines == 0
    assert t.read_new() == []  # nothing new, the torn line still waits
    append(p, 'ss": 1.5}')
    assert t.read_new() == []  # complete object, but no newline yet
    append(p, "\n")
    assert t.read_new() == [{"step": 2, "loss": 1.5}]
    assert t.bad_lines == 0


def test_growing_file_returns_only_new_rows(tmp_path):
    p = tmp_path / "metrics.jsonl"
    t = JsonlTail(p)
    seen = []
    for step in range(1, 6):
        append(p, json.dumps({"step": step, "loss": 1.0 / step}) + "\n")
        rows = t.read_new()
        assert [r["step"] for r in rows] == [step]
        seen += rows
    append(p, "".join(json.dumps({"step": s}) + "\n" for s in (6, 7, 8)))
    assert [r["step"] for r in t.read_new()] == [6, 7, 8]
    assert t.offset == os.path.getsize(p)


def test_small_reads_reassemble_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "reward": s * 0.5, "name": "x" * s} for s in range(1, 30)]
    append(p, "".join(json.dumps(r) + "\n" for r in rows))
    t = JsonlTail(p)
    got = []
    for _ in range(1000):
        got += t.read_new(max_bytes=7)
        if len(got) == len(rows):
            break
    assert got == rows


def test_nan_and_infinity_accepted_and_missing_in_history(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, '{"step": 1, "loss": NaN, "reward": 0.5}\n{"step": 2, "loss": Infinity, "kl": -Infinity}\n'
              '{"step": 3, "loss": 0.25, "reward": null}\n')
    t = JsonlTail(p)
    rows = t.read_new()
    assert [r["step"] for r in rows] == [1, 2, 3] and t.bad_lines == 0
    h = MetricsHistory()
    h.add(rows)
    assert h.points("loss") == ([3.0], [0.25])
    assert h.points("reward") == ([1.0], [0.5])
    assert "kl" not in h.series
    assert h.latest == {"loss": 0.25, "reward": 0.5}
    assert h.step == 3


def test_garbage_lines_skipped_and_counted(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, b'{"step": 1}\nnot json at all\n[1, 2]\n\xff\xfe\x00\n\n{"step": 2}\n')
    t = JsonlTail(p)
    assert t.read_new() == [{"step": 1}, {"step": 2}]
    assert t.bad_lines == 3  # text, a list, invalid UTF-8; the blank line is not counted


def test_truncation_restarts(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, '{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    t = JsonlTail(p)
    assert len(t.read_new()) == 3
    with open(p, "wb") as f:  # same inode, shorter
        f.write(b'{"step": 10}\n')
    assert t.read_new() == [{"step": 10}]
    assert t.resets == 1


def test_replacement_restarts(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, '{"step": 1}\n')
    t = JsonlTail(p)
    assert t.read_new() == [{"step": 1}]
    new = tmp_path / "new.jsonl"
    new.write_text('{"step": 100}\n{"step": 101}\n{"step": 102}\n')  # longer than the old file
    os.replace(new, p)
    assert [r["step"] for r in t.read_new()] == [100, 101, 102]
    assert t.resets == 1
    assert t.read_new() == []


def test_history_lifecycle_and_eta(tmp_path):
    h = MetricsHistory()
    h.add([{"event": "train_begin", "step": 0, "max_steps": 10, "time": 1000.0},
           {"step": 1, "time": 1002.0, "epoch": 0.1, "loss": 3.0},
           {"step": 2, "time": 1004.0, "epoch": 0.2, "loss": 2.0, "reward": True},
           {"event": "checkpoint", "step": 2, "time": 1004.5}])
    assert h.max_steps == 10 and h.step == 2 and not h.ended
    assert h.keys() == ["loss"]  # step/time/epoch are axes; a bool is not a metric
    assert h.eta_seconds(now=1004.0) == 16.0  # 2 s per step, 8 steps left
    assert [e["event"] for e in h.events] == ["train_begin", "checkpoint"]
    h.add([{"event": "train_end", "step": 10, "time": 1020.0}])
    assert h.ended and h.step == 10
    assert h.eta_seconds(now=1020.0) == 0.0


def test_read_history(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append(p, '{"event": "train_begin", "step": 0, "max_steps": 3}\n{"step": 1, "loss": 1}\n{"step": 2, "lo')
    h = read_history(p)
    assert h.max_steps == 3 and h.points("loss") == ([1.0], [1.0])


def test_run_summary_reads_head_and_tail(tmp_path):
    p = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"event": "train_begin", "step": 0, "max_steps": 5000, "time": 0})]
    for step in range(1, 3001):  # ~300 KB: train_begin only in the head, the latest rows only in the tail
        lines.append(json.dumps({"step": step, "time": step, "epoch": step / 3000, "loss": 1.0 / step,
                                 "reward": step / 3000, "pad": "x" * 40}))
    lines.append(json.dumps({"step": 3001, "time": 3001, "kl": 0.01}))
    append(p, "\n".join(lines) + "\n" + '{"step": 3002, "loss": 9')  # torn last line
    assert os.path.getsize(p) > 4 * 65536
    s = run_summary(p)
    assert s["max_steps"] == 5000
    assert s["step"] == 3001
    assert s["latest"]["loss"] == 1.0 / 3000 and s["latest"]["reward"] == 1.0 and s["latest"]["kl"] == 0.01
    assert "time" not in s["latest"] and "epoch" not in s["latest"] and "pad" not in s["latest"]


def test_run_summary_missing_file(tmp_path):
    assert run_summary(tmp_path / "none.jsonl") == {"step": 0, "max_steps": None, "latest": {}}


# -- bounded series, overview and saved views (big runs) -------------------------------------------------------
from workbench.core.metrics import Series, load_view, overview, save_view  # noqa: E402
from workbench.core.samples import SampleIndex, line_step  # noqa: E402


def test_series_is_bounded_and_keeps_every_extreme():
    s = Series()
    xs = [float(i) for i in range(100_000)]
    ys = [((i * 7919) % 1000) / 1000 for i in range(100_000)]
    ys[12_345], ys[99_998] = 50.0, -50.0  # one spike up, one down, anywhere
    for i in range(0, len(xs), 333):  # folded in uneven chunks, as polls deliver them
        s.extend(xs[i:i + 333], ys[i:i + 333])
    px, py = s.points()
    assert len(s.x0) <= Series.CAP and len(px) <= 2 * Series.CAP
    assert px == sorted(px) and px[0] == 0.0 and s.x1[-1] == 99_999.0
    assert max(py) == 50.0 and px[py.index(50.0)] == 12_345.0
    assert min(py) == -50.0 and px[py.index(-50.0)] == 99_998.0
    assert s.count == 100_000 and not s.exact


def test_series_small_is_exact_and_truncates_exactly():
    s = Series()
    s.extend([1.0, 2.0, 3.0, 4.0], [0.4, 0.3, 0.2, 0.1])
    assert s.exact and s.points() == ([1.0, 2.0, 3.0, 4.0], [0.4, 0.3, 0.2, 0.1])
    s.truncate_after(2)
    s.add(3.0, 9.0)
    assert s.points() == ([1.0, 2.0, 3.0], [0.4, 0.3, 9.0]) and s.last == 9.0


def test_resume_event_drops_superseded_rows():
    h = MetricsHistory()
    h.add([{"step": s, "loss": 1.0 / s} for s in range(1, 11)])
    h.add([{"event": "resume", "step": 6}] + [{"step": s, "loss": 5.0} for s in range(7, 9)])
    xs, ys = h.points("loss")
    assert xs == [float(s) for s in range(1, 9)] and ys[-2:] == [5.0, 5.0] and h.step == 8


def big_metrics(path, rows: int, keys: int = 5) -> None:
    with open(path, "w") as f:
        f.write(json.dumps({"event": "train_begin", "step": 0, "max_steps": rows, "time": 0.0}) + "\n")
        for s in range(1, rows + 1):
            f.write(json.dumps({"step": s, "time": float(s), **{f"k{k}": (s % 97) / 97 + k for k in range(keys)}})
                    + "\n")


def test_overview_reads_head_samples_and_tail(tmp_path):
    p = tmp_path / "metrics.jsonl"
    big_metrics(p, 20_000)
    h, size = overview(p, samples=200, edge=8192)
    assert size == os.path.getsize(p) and h.max_steps == 20_000 and h.step == 20_000
    xs, _ = h.points("k0")
    assert 250 < len(xs) < 1200 and xs == sorted(xs) and xs[0] == 1.0 and xs[-1] == 20_000.0
    assert h.latest["k4"] == (20_000 % 97) / 97 + 4


def test_saved_view_resumes_reading_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "metrics.jsonl"
    big_metrics(p, 3000)
    tail, h = JsonlTail(p), MetricsHistory()
    h.add(tail.read_new())
    assert save_view(tail, h)
    append(p, json.dumps({"step": 3001, "k0": 123.0}) + "\n")
    tail2 = JsonlTail(p)
    h2 = load_view(tail2)
    assert h2 is not None and h2.step == 3000 and h2.max_steps == 3000
    assert h2.points("k3") == h.points("k3")
    h2.add(tail2.read_new())
    assert h2.step == 3001 and h2.latest["k0"] == 123.0
    with open(p, "r+b") as f:  # the file's beginning changed (same inode): the saved view no longer applies
        f.write(b'{"step": 9, "k0": 1}' + b" " * 10)
    assert load_view(JsonlTail(p)) is None


def test_sample_index_keeps_byte_ranges_per_step(tmp_path):
    p = tmp_path / "samples.jsonl"
    rows = [{"step": s, "index": i, "completion": f"c{s}-{i}"} for s in (1, 2, 3) for i in range(4)]
    odd = {"completion": "step not first", "step": 2, "index": 9}  # another writer's key order
    p.write_text("".join(json.dumps(r) + "\n" for r in rows[:8]) + json.dumps(odd) + "\n"
                 + "".join(json.dumps(r) + "\n" for r in rows[8:]) + "garbage\n" + '{"step": 4, "ind')
    index = SampleIndex(p)
    assert index.read_new(max_bytes=100, budget_s=0) and index.behind > 0  # one small chunk, then out of time
    assert index.read_new(max_bytes=100) and not index.behind  # chunk after chunk within its time budget
    assert index.steps == [1, 2, 3] and index.counts == {1: 4, 2: 5, 3: 4}
    assert [r["index"] for r in index.rows(2)] == [0, 1, 2, 3, 9]
    assert index.rows(3) == rows[8:] and index.position(3) == 2 and 4 not in index
    assert index.tail.bad_lines == 1
    with open(p, "a") as f:
        f.write('dex": 0}\n')
    assert index.read_new() and index.steps == [1, 2, 3, 4]


def test_line_step_prefix_and_fallback():
    assert line_step(b'{"step": 12, "x": 1}') == 12
    assert line_step(b'{"x": 1, "step": 7}') == 7
    assert line_step(b'{"step": 1.5e3}') == 1500
    assert line_step(b"nope") is None and line_step(b'{"step": "a"}') is None


def test_sample_index_of_a_big_file_shows_the_newest_step_first(tmp_path, monkeypatch):
    import workbench.core.samples as samples_mod

    monkeypatch.setattr(samples_mod, "TAIL_FIRST", 4096)
    p = tmp_path / "samples.jsonl"
    rows = [{"step": s, "index": i, "completion": "x" * 50} for s in range(1, 101) for i in range(4)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = SampleIndex(p)
    index.read_new(max_bytes=1024, budget_s=0)  # one chunk: the file's end only
    assert index.steps[-1] == 100 and index.steps[0] > 1 and index.behind > 0
    assert index.rows(100) == rows[-4:]
    index.read_new(max_bytes=1024)  # the rest, oldest first, within the time budget
    assert not index.behind and index.steps == list(range(1, 101))
    assert all(index.counts[s] == 4 for s in index.steps)
    assert all(index.rows(s) == rows[(s - 1) * 4:s * 4] for s in (1, 50, 99, 100))
    with open(p, "a") as f:
        f.write(json.dumps({"step": 101, "index": 0}) + "\n")
    assert index.read_new() and index.steps[-1] == 101 and index.counts[101] == 1


def test_last_row_with_reads_back_from_the_end(tmp_path):
    from workbench.core.metrics import last_row_with

    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as f:
        for i in range(3000):
            row = {"step": i, "loss": 1.0}
            if i % 700 == 0:
                row["eval/accuracy"] = i / 10000
            f.write(json.dumps(row) + "\n")
        f.write('{"step": 3000, "eval/accuracy": 0.9')  # a torn last line is not a row
    for chunk in (64, 1000, 256 * 1024):  # rows that straddle chunk borders
        assert last_row_with(path, "eval/accuracy", chunk=chunk)["step"] == 2800
    assert last_row_with(path, "kl") is None
    assert last_row_with(tmp_path / "missing.jsonl", "loss") is None
