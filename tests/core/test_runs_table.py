"""The runs list's columns (core/runs_table.py): what fits a width, the run id elided in the middle, the age, and
`workbench ls` fitted to $COLUMNS (80: state, step/max, reward and age in full; 120 and --wide: every column)."""
from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import workbench_cmd
from tests.tui.conftest import make_run
from workbench.core import runs_table
from workbench.core.runs_table import NAMES, abbreviate, fit, fmt_age

LONG = "20260101-100000-grpo-long-name-experiment-beta004"


def test_abbreviate_keeps_the_tail_and_a_little_of_the_head():
    assert abbreviate("short", 10) == "short"
    cut = abbreviate(LONG, 25)
    assert len(cut) == 25 and cut.startswith("20260101") and cut.endswith("periment-beta004") and "…" in cut


def test_age_is_short():
    now = 1_000_000.0
    assert [fmt_age(now - s, now) for s in (5, 600, 3 * 3600 + 12 * 60, 2 * 86400 + 3 * 3600, 15 * 86400)] == \
        ["5s", "10m", "3h12m", "2d3h", "15d"]
    assert fmt_age(None) == "-"


def widths_at(width: int, run_id: str = LONG) -> dict[str, int | None]:
    rows = [(run_id, "completed", "grpo", "builtin:tiny-lm", "1200/1200", "0.7344", "8.33e-04", "3h12m", "1:02:03"),
            ("x", "waiting #12", "distill-offline", "Qwen/Qwen2.5-0.5B-Instruct", "38/300", "-", "-", "5s", "-")]
    return dict(zip(NAMES, fit(runs_table.natural_widths(rows), width, 2)))


def test_at_80_the_values_that_matter_stay_whole_and_the_run_id_gives_way():
    w = widths_at(78)
    assert w["state"] == len("waiting #12") and w["step"] == len("1200/1200") and w["reward"] == len("reward")
    assert w["age"] == len("3h12m")
    assert 20 <= w["run"] < len(LONG)
    assert w["model"] is None and w["stage"] is None  # the first to go
    assert sum(v + 2 for v in w.values() if v) <= 78


def test_at_120_and_wider_more_columns_and_at_200_everything_whole():
    w = widths_at(118)
    assert all(w[n] is not None for n in ("stage", "loss", "time", "step", "reward", "age"))
    wide = widths_at(200)
    assert wide["run"] == len(LONG) and wide["model"] == len("Qwen/Qwen2.5-0.5B-Instruct")


def test_a_short_run_id_is_never_elided():
    assert widths_at(78, run_id="20260101-000000-a")["run"] == len("20260101-000000-a")


def ls(runs_dir, columns: int, *extra: str) -> list[str]:
    proc = subprocess.run(workbench_cmd("--runs-dir", str(runs_dir), "ls", *extra), capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": str(columns)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_ls_fits_columns_and_keeps_state_step_reward_age_whole(runs_dir):
    make_run(runs_dir, LONG, state="completed", steps=1200, max_steps=1200)
    make_run(runs_dir, "20260101-090000-sft-tiny", state="failed", stage="sft", steps=38, max_steps=300)
    narrow = ls(runs_dir, 80)
    assert all(len(line) <= 80 for line in narrow), narrow
    header = narrow[0].split()
    assert {"RUN", "STATE", "STEP", "REWARD", "AGE"} <= set(header) and "MODEL" not in header
    first = dict(zip(header, narrow[1].split()))
    assert first["RUN"].endswith("experiment-beta004") and "…" in first["RUN"]
    assert (first["STATE"], first["STEP"], first["REWARD"]) == ("completed", "1200/1200", "120")
    second = dict(zip(header, narrow[2].split()))
    assert (second["RUN"], second["STATE"], second["STEP"]) == ("20260101-090000-sft-tiny", "failed", "38/300")
    wide = ls(runs_dir, 120)
    assert wide[0].split() == ["RUN", "STATE", "STAGE", "MODEL", "STEP", "REWARD", "LOSS", "AGE", "TIME"]
    assert wide[1].split()[1:5] == ["completed", "grpo", "builtin:tiny-lm", "1200/1200"]
    assert wide[1].split()[0].endswith("long-name-experiment-beta004")
    assert ls(runs_dir, 40, "--wide")[1].split()[0] == LONG, "--wide: nothing elided"


def test_ls_groups_a_pipelines_stage_runs_under_it_when_narrow(runs_dir):
    from tests.tui.test_runs_pipelines import make_pipeline

    make_pipeline(runs_dir, "20260102-000000-demo", "running",
                  ["20260102-000001-demo-pretrain-with-a-long-name", "20260102-000100-demo-sft"])
    lines = ls(runs_dir, 80)
    assert lines[1].split()[:2] == ["20260102-000000-demo", "running"] and "stage 2/2" in lines[1]
    assert lines[2].split()[0] == "└" and lines[2].split()[1].endswith("with-a-long-name")
    assert lines[3].split()[:3] == ["└", "20260102-000100-demo-sft", "running"]
    status = json.loads((runs_dir / "20260102-000100-demo-sft" / "status.json").read_text())
    assert status["pipeline"] == "20260102-000000-demo"
