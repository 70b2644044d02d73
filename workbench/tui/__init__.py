"""The Textual TUI (see app.py). Imports only workbench.core, textual, textual-plotext and plotext; never the training stack."""
