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
    assert h.series["loss"] == ([3.0], [0.25])
    assert h.series["reward"] == ([1.0], [0.5])
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
    assert h.max_steps == 3 and h.series["loss"] == ([1.0], [1.0])


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
