"""The training child's start-up measures (workbench/train/entry.py): frame-stack headroom and deferred full GC."""
from __future__ import annotations

import gc
import resource
import sys

import pytest

from workbench.train import entry


def _leaf():
    return None


def _faults_scanning_depths(max_depth: int = 400, calls: int = 200) -> int:
    """Minor page faults while calling a leaf function in a loop at every call depth up to max_depth.

    On CPython 3.11/3.12 a depth whose frame ends at a 16 KiB frame-stack chunk border maps (and faults in) a fresh
    chunk on each call; anywhere else the loop touches no new memory."""
    def at(depth: int) -> None:
        if depth:
            return at(depth - 1)
        for _ in range(calls):
            _leaf()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for d in range(max_depth):
        at(d)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_stack_headroom_passes_through():
    assert entry._call_with_stack_headroom(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        entry._call_with_stack_headroom(divmod, 1, 0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 keeps frames as separate objects")
def test_stack_headroom_stops_chunk_thrashing():
    _faults_scanning_depths()  # warm up (code objects, specialisation)
    outside = _faults_scanning_depths()
    inside = entry._call_with_stack_headroom(_faults_scanning_depths)
    if outside < 150:
        pytest.skip(f"this Python does not thrash frame-stack chunks ({outside} faults without the headroom)")
    assert inside < 50, (inside, outside)


def test_main_restores_gc_thresholds(tmp_path):
    before = gc.get_threshold()
    with pytest.raises(Exception):  # noqa: B017 - no recipe in the run dir: fails before training
        entry.main(str(tmp_path))
    assert gc.get_threshold() == before
