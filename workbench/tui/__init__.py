"""The Textual TUI (see app.py). Imports only workbench.core, textual and rich; never the training stack."""
