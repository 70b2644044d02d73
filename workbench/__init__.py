"""workbench: a terminal workbench for LLM post-training.

The package has a light side (``workbench.core``, ``workbench.cli``, ``workbench.tui``) that never imports
torch, transformers, trl, peft, datasets, deepspeed or accelerate, and a heavy side (``workbench.train``)
that runs only in the training child process.
"""

__version__ = "0.1.0"
