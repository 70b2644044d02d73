"""Unit layer of the training child: the callbacks that write the run directory and honour stops, the
heartbeat of runner-less runs, and the recipe's data shaping. No trainer runs here; the Trainer's callback
objects (TrainingArguments-free TrainerState/TrainerControl) are enough."""
from __future__ import annotations

import json
import time

import pytest

from workbench.core.rundir import RunDir


@pytest.fixture
def rd(tmp_path) -> RunDir:
    d = RunDir(tmp_path / "run")
    d.path.mkdir()
    d.write_status(phase="training")
    return d


def state(step: int, max_steps: int = 10):
    from transformers import TrainerState

    s = TrainerState()
    s.global_step, s.max_steps, s.epoch = step, max_steps, step / max_steps
    return s


def control():
    from transformers import TrainerControl

    return TrainerControl()


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_stop_request_ends_after_the_step_with_a_checkpoint_and_reports_saving(rd):
    from workbench.train.callbacks import StopControl

    stop = StopControl(rd, report=rd.write_status)
    c = stop.on_step_end(None, state(3), control())
    assert not c.should_training_stop and not c.should_save
    assert rd.read_status()["phase"] == "training"
    rd.stop_request_path.write_text("now")
    c = stop.on_step_end(None, state(4), control())
    assert c.should_training_stop and c.should_save and stop.stopped and stop.last_step == 4
    st = rd.read_status()
    assert st["phase"] == "saving" and time.time() - st["saving_since"] < 5  # escalation waits for it
    stop.on_save(None, state(4), c)
    st = rd.read_status()
    assert st["phase"] == "training" and "saving_since" not in st


def test_a_scheduled_save_is_reported_too(rd):
    from workbench.train.callbacks import StopControl

    stop = StopControl(rd, report=rd.write_status)
    c = control()
    c.should_save = True  # what DefaultFlowCallback sets at save_steps, before our on_step_end
    stop.on_step_end(None, state(5), c)
    assert rd.read_status()["phase"] == "saving" and not stop.stopped


def test_stop_for_a_loop_that_ignores_should_training_stop_raises_after_reporting(rd):
    from workbench.train.callbacks import StopControl, StopRequested

    stop = StopControl(rd, report=rd.write_status)
    stop.raise_on_stop = True
    stop.signalled = True  # SIGTERM: the same graceful request
    with pytest.raises(StopRequested):
        stop.on_step_end(None, state(2), control())
    assert rd.read_status()["phase"] == "saving"


def test_rank0_logs_rows_a_member_logs_only_its_lifecycle_events(tmp_path):
    from workbench.train.callbacks import RunLogger

    main, member = RunDir(tmp_path / "m0"), RunDir(tmp_path / "m1")
    main.path.mkdir()
    member.path.mkdir()
    for d, is_main in ((main, True), (member, False)):
        log = RunLogger(d, is_main, events=True)
        log.on_train_begin(None, state(0), control())
        log.on_log(None, state(1), control(), logs={"loss": 1.5, "grad_norm": float("nan")})
        log.on_train_end(None, state(1), control())
    rows = lines(main.metrics_path)
    assert [r.get("event") for r in rows] == ["train_begin", None, "train_end"]
    assert rows[1]["loss"] == 1.5 and rows[1]["grad_norm"] is None  # NaN written as null, readable JSON
    assert [r.get("event") for r in lines(member.metrics_path)] == ["train_begin", "train_end"]
    silent = RunDir(tmp_path / "rank3")
    silent.path.mkdir()
    RunLogger(silent, False).on_train_begin(None, state(0), control())
    assert not silent.metrics_path.exists()  # a non-reporting rank writes nothing


def test_heartbeat_thread_keeps_a_runnerless_run_fresh(rd):
    from workbench.train.callbacks import Heartbeat

    hb = Heartbeat(rd, every=0.05)
    first = rd.heartbeat_path.stat().st_mtime_ns
    time.sleep(0.3)
    assert rd.heartbeat_path.stat().st_mtime_ns > first
    hb.stop()
    assert rd.heartbeat_age() < 1


# -- data shaping ----------------------------------------------------------------------------------------------
def dataset(rows):
    from datasets import Dataset

    return Dataset.from_list(rows)


def test_system_prompt_turns_text_prompts_into_chat():
    from workbench.train.data import shape

    ds = shape(dataset([{"prompt": "What is 2 + 3?", "answer": "5"}]), "Answer in tags")
    assert ds[0]["prompt"] == [{"role": "system", "content": "Answer in tags"},
                               {"role": "user", "content": "What is 2 + 3?"}]
    assert ds[0]["answer"] == "5"  # reward columns survive


def test_system_prompt_is_not_doubled_on_chat_prompts():
    from workbench.train.data import shape

    chat = [{"role": "system", "content": "own"}, {"role": "user", "content": "hi"}]
    assert shape(dataset([{"prompt": chat}]), "Answer in tags")[0]["prompt"] == chat


def test_instruction_rows_become_conversations():
    from workbench.train.data import shape

    ds = shape(dataset([{"instruction": "Add", "input": "2 and 3", "output": "5"}]), "")
    assert ds.column_names == ["messages"]
    assert ds[0]["messages"] == [{"role": "user", "content": "Add\n\n2 and 3"},
                                 {"role": "assistant", "content": "5"}]


def test_text_completion_becomes_chat_with_a_chat_prompt():
    from workbench.train.data import shape

    ds = shape(dataset([{"prompt": "2+3?", "completion": "5"}]), "sys")
    assert ds[0]["completion"] == [{"role": "assistant", "content": "5"}]
    assert ds[0]["prompt"][0] == {"role": "system", "content": "sys"}


def test_max_samples_and_local_jsonl(tmp_path):
    from workbench.core.recipe import Recipe
    from workbench.train.data import load

    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(10)))
    recipe = Recipe.parse(f'[run]\nstage = "pretrain"\n[model]\npath = "builtin:tiny-lm"\n[data]\npath = "{f}"\n'
                          "max_samples = 3\n")
    ds = load(recipe)
    assert len(ds) == 3 and ds[2]["text"] == "row 2"
