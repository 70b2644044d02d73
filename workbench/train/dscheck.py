"""Child-process helper: validate a DeepSpeed JSON (stdin) with DeepSpeed's own config class.

The batch is checked for one process (torch.distributed is not initialised here), so train_batch_size is
rescaled to micro x accumulation; "auto" precision flags are taken as off. Prints "ok" or the error; exit 1 on error.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    cfg = json.load(sys.stdin)
    cfg["train_batch_size"] = cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"]
    for key in ("bf16", "fp16"):
        if cfg.get(key, {}).get("enabled") == "auto":
            cfg[key]["enabled"] = False
    try:
        from deepspeed.runtime.config import DeepSpeedConfig

        DeepSpeedConfig(cfg)
    except Exception as e:  # noqa: BLE001 - any rejection is reported to the user
        print(f"{type(e).__name__}: {e}".replace("\n", " "))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
