"""Faults in what a run writes: a checkpoint torn by a kill while it is written, a full disk, the run directory
deleted under a live run.

A torn checkpoint (no trainer_state.json, or half of one) is skipped and the resume starts from the one before;
a full disk fails the run with the reason, and once space is freed it resumes; a deleted run leaves no process.
"""
from __future__ import annotations

import errno
import shutil
import time

import pytest

from workbench.core import lifecycle, rundir, supervisor
from workbench.core.metrics import read_history
from workbench.core.rundir import HEARTBEAT_EVERY

pytestmark = pytest.mark.e2e

SAVE_S = 1.0  # the checkpoint a test tears: model files at once, half of trainer_state.json at 0.5 s, the rest at 1 s


def wait_saving(run, step: int) -> None:
    """Until the trainer reports it is writing checkpoint-``step`` (reported just before the step's row)."""
    run.wait_phase("saving", min_step=step - 1)


def torn(ckpt) -> str:
    state = ckpt / "trainer_state.json"
    return "inside trainer_state.json" if state.is_file() else "before trainer_state.json"


# -- torn checkpoints ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["before trainer_state.json", "inside trainer_state.json"])
@pytest.mark.parametrize("target", ["trainer", "group"])
def test_killed_while_writing_a_checkpoint(runs, tally, rng, target, where):
    step = 5 * rng.randint(2, 5)
    run = runs.launch(max_steps=30, save_steps=5, slow={step: SAVE_S})
    wait_saving(run, step)
    if where.startswith("inside"):  # its first half is written 0.5 s into the save, the rest 0.5 s later
        state = run.rd.checkpoints / f"checkpoint-{step}" / "trainer_state.json"
        deadline = time.monotonic() + 10
        while not state.is_file():
            assert time.monotonic() < deadline, "trainer_state.json never appeared"
            time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.3))
    with tally.fault(f"SIGKILL to the {target} while writing checkpoint-{step} ({where})") as fault:
        run.inject("SIGKILL", target)
        run.check_ended("killed")
        ckpt, skipped = lifecycle.resume_checkpoint(run.rd)
        assert [p.name for p in skipped] == [f"checkpoint-{step}"] and torn(skipped[0]) == where, \
            f"the kill was meant to tear checkpoint-{step} {where}: {skipped}"
        assert ckpt.name == f"checkpoint-{step - 5}"
        fault.resumed_to_max = run.resume_to_max()
        assert any(f"checkpoint-{step}" in n for n in run.rd.read_status().get("resume_notes", []))


def test_killed_while_writing_the_first_checkpoint(runs, tally):
    """Nothing complete to resume from: the resume says so (and names the half-written one); nothing is lost."""
    run = runs.launch(max_steps=30, save_steps=5, slow={5: SAVE_S})
    wait_saving(run, 5)
    time.sleep(0.2)
    with tally.fault("SIGKILL to the trainer while writing the first checkpoint"):
        run.inject("SIGKILL", "trainer")
        run.check_ended("killed")
        try:
            supervisor.resume(run.rd)
        except supervisor.BadInput as e:
            assert "no complete checkpoint" in str(e) and "1 half-written" in str(e), e
        else:
            raise AssertionError("resumed from a half-written checkpoint")


def test_sigterm_while_writing_a_checkpoint_finishes_it(runs, tally, rng):
    step = 5 * rng.randint(1, 5)
    run = runs.launch(max_steps=30, save_steps=5, slow={step: SAVE_S})
    wait_saving(run, step)
    time.sleep(rng.uniform(0.05, 0.8))
    with tally.fault(f"SIGTERM to the group while writing checkpoint-{step}") as fault:
        run.inject("SIGTERM", "group")
        run.check_ended("stopped")
        run.stop_checkpoint_is_at_the_stop()
        assert lifecycle.checkpoint_complete(run.rd.checkpoints / f"checkpoint-{step}"), "the save was cut short"
        fault.resumed_to_max = run.resume_to_max()


def test_sigkill_while_the_stop_checkpoint_is_written(runs, tally, rng):
    """A stop was asked for, and the trainer is killed while it writes the stop's checkpoint."""
    at = rng.randint(7, 22)
    run = runs.launch(max_steps=30, save_steps=5, slow={s: SAVE_S for s in range(at, at + 4)})
    run.wait_step(at)
    supervisor.request_stop(run.rd)
    run.wait_phase("saving", min_step=at)
    time.sleep(rng.uniform(0.05, 0.6))
    with tally.fault(f"SIGKILL to the trainer while it saves for a stop at step {at}") as fault:
        run.inject("SIGKILL", "trainer")
        run.check_ended("stopped")  # asked for; the resume starts from the checkpoint before
        ckpt, skipped = lifecycle.resume_checkpoint(run.rd)
        assert skipped and int(ckpt.name.split("-")[-1]) % 5 == 0
        fault.resumed_to_max = run.resume_to_max()


def test_killed_while_writing_the_final_model(runs, tally):
    """train_end is written but not the outcome: killed, never completed; the resume finishes it."""
    run = runs.launch(max_steps=20, save_steps=5, slow={"final": SAVE_S})
    deadline = time.monotonic() + 30
    while not (run.rd.has_event("train_end") and run.rd.read_status().get("phase") == "saving"):
        assert time.monotonic() < deadline, "the final save was not seen"
        time.sleep(0.005)
    with tally.fault("SIGKILL to the trainer while writing the final model") as fault:
        run.inject("SIGKILL", "trainer")
        st = run.check_ended("killed")
        assert "outcome" not in st
        fault.resumed_to_max = run.resume_to_max()


# -- a full disk -------------------------------------------------------------------------------------------------
def test_disk_full_while_training_then_freed(runs, tally, rng, tmp_path):
    """Every write of the trainer fails (status too): it dies with the reason, which the runner records."""
    disk = tmp_path / "disk-full"
    run = runs.launch(max_steps=30, save_steps=5, disk_full=disk)
    at = run.wait_step(rng.randint(6, 26))
    with tally.fault(f"disk full at step {at}") as fault:
        disk.write_text("all")
        st = run.check_ended("failed")
        assert "No space left on device" in st["error"], st
        disk.unlink()
        fault.resumed_to_max = run.resume_to_max()


def test_disk_full_while_writing_a_checkpoint(runs, tally, rng, tmp_path):
    """Metrics and checkpoint writes fail, status writes still work: the trainer reports the failure itself."""
    disk = tmp_path / "disk-full"
    step = 5 * rng.randint(2, 5)
    run = runs.launch(max_steps=30, save_steps=5, slow={step: SAVE_S}, disk_full=disk)
    wait_saving(run, step)
    time.sleep(rng.uniform(0.0, 0.6))
    with tally.fault(f"disk full while writing checkpoint-{step}") as fault:
        disk.write_text("data")
        st = run.check_ended("failed")
        assert st["error"] == "OSError: [Errno 28] No space left on device" and st["outcome"] == "failed", st
        ckpt, skipped = lifecycle.resume_checkpoint(run.rd)
        assert ckpt.name == f"checkpoint-{step - 5}" and [p.name for p in skipped] == [f"checkpoint-{step}"]
        disk.unlink()
        fault.resumed_to_max = run.resume_to_max()


def test_disk_still_full_when_resumed(runs, tally, rng, tmp_path):
    first, second = tmp_path / "disk-full-1", tmp_path / "disk-full-2"
    run = runs.launch(max_steps=30, save_steps=5, disk_full=first)
    at = run.wait_step(rng.randint(1, 3))
    with tally.fault(f"disk full at step {at}, before the first checkpoint"):
        first.write_text("all")
        run.check_ended("failed")
        assert run.start_resume() is None, "nothing complete to resume from"

    run = runs.launch(max_steps=30, save_steps=5, disk_full=second)
    at = run.wait_step(rng.randint(6, 24))
    with tally.fault(f"disk full at step {at}, still full at the resume") as fault:
        second.write_text("all")
        run.check_ended("failed")
        assert run.start_resume() is not None
        st = run.check_ended("failed", run.wait_final(20))
        assert "No space left on device" in st["error"]
        second.unlink()
        fault.resumed_to_max = run.resume_to_max()


def test_run_killed_on_a_full_disk_is_still_shown_killed(runs, tally, rng, monkeypatch):
    """The whole tree SIGKILLed while the disk is full for everyone (this reader too): status and the runs list
    show it killed without being able to write it; once space is back a reader writes it, and it resumes."""
    run = runs.launch(max_steps=30, save_steps=5)
    at = run.wait_step(rng.randint(6, 26))
    with tally.fault(f"SIGKILL to the group at step {at} on a full disk") as fault:
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(rundir, "write_json_atomic", full)
            run.inject("SIGKILL", "group")
            run.assert_no_processes()
            st = run.check_ended("killed", supervisor.status(run.rd))
            assert [s["state"] for _, s in supervisor.list_runs(run.rd.path.parent)] == ["killed"]
            assert run.rd.read_status()["state"] == "running", "nothing could be written"
        assert supervisor.status(run.rd)["state"] == "killed" == run.rd.read_status()["state"]
        assert "SIGKILL" in st["error"]
        fault.resumed_to_max = run.resume_to_max()


# -- the run directory deleted while the run is live ---------------------------------------------------------
def rm_rf(path) -> None:
    """What a user's `rm -rf RUN_DIR` does to a live run: a writer may add a file between the listing and the last
    rmdir (ENOTEMPTY, as a loaded run of the suite saw while a checkpoint was written), or rename away a file it
    listed (ENOENT), and the user runs it again."""
    for _ in range(20):
        try:
            shutil.rmtree(path)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.ENOENT):
                raise
            if not path.exists():
                return
            time.sleep(0.05)
    raise AssertionError(f"{path} could not be deleted: something keeps writing into it")


@pytest.mark.parametrize("when", ["training", "saving"])
def test_run_dir_deleted_while_live(runs, tally, rng, when):
    """Nothing is left to record to: every process of the run ends within a heartbeat, none trains on."""
    at = rng.randint(3, 30)
    saved = 5 * (at // 5 + 1)
    run = runs.launch(max_steps=5000, save_steps=5 if when == "saving" else 10_000, slow={saved: SAVE_S})
    if when == "saving":
        wait_saving(run, saved)
        time.sleep(rng.uniform(0.05, 0.6))
    else:
        run.wait_step(at)
    with tally.fault(f"run dir deleted while {when} (step {at})"):
        rm_rf(run.rd.path)
        run.assert_no_processes(within=HEARTBEAT_EVERY + 5)
        assert run.rd.id not in [rd.id for rd, _ in supervisor.list_runs(run.rd.path.parent)]
        assert read_history(run.rd.metrics_path).step == 0
