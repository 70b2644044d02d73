"""UI-free, torch-free core shared by the CLI, the TUI and the tests.

Nothing under ``workbench.core`` may import textual, torch, transformers, trl, peft, datasets, deepspeed or
accelerate: the CLI's light commands and the TUI must start in a fraction of a second.
"""
