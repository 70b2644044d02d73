"""A footer that shows only the key bindings that fit on its one line, the most needed first.

Textual's Footer lays every shown binding out in a row and lets the command-palette key, docked right, cover the
ones that overflow (at 80 columns the runs list read "… d Delete  c Dup▏^p palette"). FittedFooter keeps the
bindings in their declared order but leaves out, from the least needed, those that do not fit beside the palette
key; every binding stays reachable by its key, in the command palette and on the help screen. A screen ranks its
bindings with ``FOOTER_KEYS`` (actions, most needed first; the rest follow in declared order); a help binding
(``?``) is always shown, and the bindings of one action with different arguments (``step(-1)``, ``step(1)``) are
shown together or not at all. The footer is laid out again when the width changes what fits.
"""
from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

HELP_KEYS = ("question_mark", "?")


class FittedFooter(Footer):
    _kept: tuple[str, ...] | None = None

    def _candidates(self) -> dict[str, tuple]:
        """action -> (binding, enabled, tooltip) of the shown bindings, one per action, in declared order."""
        out: dict[str, tuple] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in out:
                out[binding.action] = (binding, enabled, tooltip)
        return out

    def _width_of(self, binding, compact: bool | None = None) -> int:
        """Cells of a FooterKey: " key desc " (compact: "key desc" and a margin of one)."""
        key, text = self.app.get_key_display(binding), binding.description
        return cell_len(key) + cell_len(text) + (2 if (self.compact if compact is None else compact) else 3)

    def _palette(self):
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return None
        return self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)

    def _fit(self, candidates: dict[str, tuple]) -> tuple[str, ...]:
        room = self.app.size.width
        palette = self._palette()
        if palette is not None:
            room -= self._width_of(palette[1], compact=True) + 1  # always compact; its border, no margin
        ranked = list(getattr(self.screen, "FOOTER_KEYS", ()))

        def rank(item: tuple[int, str]) -> tuple[int, int]:
            i, action = item
            binding = candidates[action][0]
            if binding.key in HELP_KEYS or "help" in action:
                return (-1, i)
            for name in (action, action.split("(")[0]):  # "queue_move" ranks queue_move('up') too
                if name in ranked:
                    return (ranked.index(name), i)
            return (len(ranked), i)

        units: dict[str, list[str]] = {}  # step(-1) and step(1): a pair shown together or not at all
        for action in candidates:
            units.setdefault(action.split("(")[0], []).append(action)
        order = sorted(units.values(), key=lambda unit: min(rank((list(candidates).index(a), a)) for a in unit))
        kept = set()
        for unit in order:
            need = sum(self._width_of(candidates[action][0]) for action in unit)
            if need <= room:
                kept.update(unit)
                room -= need
        return tuple(action for action in candidates if action in kept)

    def compose(self):
        if not self._bindings_ready:
            return
        candidates = self._candidates()
        self._kept = self._fit(candidates)
        for action in self._kept:
            binding, enabled, tooltip = candidates[action]
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
        palette = self._palette()
        if palette is not None:
            _node, binding, enabled, _tooltip = palette
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self) -> None:
        if self._kept is not None and self._fit(self._candidates()) != self._kept:
            self.call_after_refresh(self.recompose)
