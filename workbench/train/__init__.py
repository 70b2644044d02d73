"""The heavy side: runs only in the training child process (imports torch, transformers, trl, peft, datasets)."""
