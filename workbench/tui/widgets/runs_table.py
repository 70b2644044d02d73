"""The runs list's table (RunsTable) and its rows: the cells of core/runs_table.py, fitted to the widget's width.

At every width the state, step/max, reward and age show in full; the run id is elided in the middle (its name
kept) and the less needed columns dropped as core.runs_table.fit decides. The widths are worked out again when
the rows or the size change; a change of widths rebuilds the table, otherwise only changed cells are updated (a
live run's step and time), so the cursor stays put.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from workbench.core import pipeline, runs_table
from workbench.core.pipedir import PipelineDir
from workbench.core.rundir import RunDir
from workbench.core.runs_table import MODEL, NAMES, RUN, abbreviate

STATE_STYLE = {"running": "bold green", "queued": "yellow", "stopping": "bold yellow", "saving": "bold yellow",
               "prepared": "blue", "completed": "cyan", "failed": "bold red", "killed": "red", "lost": "red",
               "stopped": "magenta", "waiting": "dim yellow", "cancelled": "magenta"}
STAGE_PREFIX = "└ "  # a pipeline's stage run, under its pipeline's row
MARK = "✓ "  # a run marked for comparison
STATE = NAMES.index("state")


@dataclass(frozen=True)
class RunRow:
    """A row of the table: a run, or a pipeline (``kind``; ``current`` is its current stage's run). ``cells`` are
    plain text, in core.runs_table.NAMES order; ``prefix`` goes before the run id."""
    path: Path
    state: str
    cells: tuple[str, ...]
    kind: str = "run"
    current: Path | None = None
    prefix: str = ""

    @property
    def key(self) -> str:
        return f"pipeline:{self.path.name}" if self.kind == "pipeline" else self.path.name


def run_row(rd: RunDir, st: dict, in_pipeline: bool = False) -> RunRow:
    return RunRow(rd.path, st.get("state") or "?", runs_table.run_cells(rd, st),
                  prefix=STAGE_PREFIX if in_pipeline else "")


def pipeline_row(pd: PipelineDir, st: dict) -> RunRow:
    current = pipeline.current_run(pd, st)
    return RunRow(pd.path, st.get("state") or "?", runs_table.pipeline_cells(pd, st), kind="pipeline",
                  current=current.path if current else None)


def table_rows(runs_dir: Path) -> list[RunRow]:
    """Newest first: each pipeline's row followed by its stage runs' rows, and the runs of no pipeline."""
    rows = []
    for group in pipeline.listing(runs_dir):
        if group.pipeline:
            rows.append(pipeline_row(group.pipeline, group.status))
        rows += [run_row(rd, st, in_pipeline=group.pipeline is not None) for rd, st in group.runs]
    return rows


class RunsTable(DataTable):
    """Shows ``rows`` (key -> RunRow, in order); ``marked`` keys get a ✓ before the id."""

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.run_rows: dict[str, RunRow] = {}
        self.marked: list[str] = []
        self._widths: list[int | None] = []
        self._shown: dict[str, tuple] = {}  # key -> the cells on screen

    def show_rows(self, rows: dict[str, RunRow]) -> None:
        self.run_rows = rows
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def _head(self, key: str, row: RunRow) -> str:
        return (MARK if key in self.marked else "") + row.prefix

    def _fit(self) -> list[int | None]:
        plain = [(self._head(k, r) + r.cells[RUN],) + r.cells[1:] for k, r in self.run_rows.items()]
        width = (self.size.width or self.app.size.width) - self.styles.scrollbar_size_vertical  # always kept
        return runs_table.fit(runs_table.natural_widths(plain), width, 2 * self.cell_padding)

    def _cells(self, key: str, row: RunRow) -> tuple:
        out = []
        for i, w in enumerate(self._widths):
            if w is None:
                continue
            if i == RUN:
                head, marked = self._head(key, row), key in self.marked
                text = Text()
                text.append(MARK if marked else "", style="bold green")
                text.append(head[len(MARK):] if marked else head)
                text.append(abbreviate(row.cells[RUN], w - len(head)), style="bold" if row.kind == "pipeline" else "")
                out.append(text)
            elif i == STATE:
                state = row.cells[STATE]
                out.append(Text(state, style=STATE_STYLE.get(state.split(" #")[0], "")))  # "waiting #2"
            else:
                out.append(abbreviate(row.cells[i], w) if i == MODEL else row.cells[i])
        return tuple(out)

    def redraw(self) -> None:
        """Rebuild when the widths or the rows' order changed, else update the cells that changed."""
        widths = self._fit()
        rebuild = widths != self._widths or list(self.run_rows) != list(self._shown)
        self._widths = widths
        shown = {key: self._cells(key, row) for key, row in self.run_rows.items()}
        if rebuild:
            selected = self.selected_key()
            self.clear(columns=True)
            for name, w in zip(NAMES, widths):
                if w is not None:
                    self.add_column(name, width=w, key=name)
            for key, cells in shown.items():
                self.add_row(*cells, key=key)
            if selected in shown:
                self.move_cursor(row=list(shown).index(selected), animate=False)
        else:
            names = [n for n, w in zip(NAMES, widths) if w is not None]
            for key, cells in shown.items():
                for name, value, before in zip(names, cells, self._shown[key]):
                    if value != before:
                        self.update_cell(key, name, value)
        self._shown = shown

    def selected_key(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
