"""Build once what the first runs and tests would otherwise build on the way: the built-in models (tiny-lm,
tiny-teacher, tiny-rm, tiny-chat), DeepSpeed's CPU ops (the shared-memory all-reduce and CPU Adam, compiled into
$TORCH_EXTENSIONS_DIR) and the project's own bytecode (workbench/ and benchmarks/: where PYTHONDONTWRITEBYTECODE=1,
as on this machine, every CLI, runner and training child would compile them again, ~0.1 s a launch; a .pyc whose
source changed since is recompiled in memory, as always). `make test` runs it after the install; each part says
how long it took, and a part that cannot be built is reported and left to be built on first use.
"""
from __future__ import annotations

import compileall
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step(what: str, fn) -> bool:
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - reported; the first use builds it (or says why it cannot)
        print(f"prebuild: {what}: not built ({type(e).__name__}: {e})", flush=True)
        return False
    print(f"prebuild: {what}: {time.monotonic() - t0:.1f} s", flush=True)
    return True


def builtins() -> None:
    from workbench.core.models import BUILTIN_MODELS
    from workbench.train.builtin import ensure_builtin

    for name in BUILTIN_MODELS:
        ensure_builtin(name)


def deepspeed_ops() -> None:
    """What DeepSpeed compiles on first use here: its CPU accelerator's shared-memory comm op (every multi-process
    run) and the CPU Adam that optimizer offload uses, loaded the way DeepSpeed itself loads them."""
    from deepspeed.accelerator import get_accelerator
    from deepspeed.ops.op_builder import CPUAdamBuilder

    if get_accelerator().device_name() == "cpu":
        get_accelerator().create_op_builder("ShareMemCommBuilder").load()
    CPUAdamBuilder().load()


def bytecode() -> None:
    """py_compile writes whatever PYTHONDONTWRITEBYTECODE says; imports read the .pyc either way."""
    for folder in ("workbench", "benchmarks"):
        if not compileall.compile_dir(str(ROOT / folder), quiet=1):
            raise RuntimeError(f"{folder}/ did not compile")


def main() -> int:
    step("bytecode", bytecode)
    step("built-in models", builtins)
    step("DeepSpeed CPU ops", deepspeed_ops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
