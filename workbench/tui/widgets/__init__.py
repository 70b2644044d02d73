"""Widgets and their UI-free helpers, grouped by the screen region they serve (charts, samples, log, recipe form)."""
