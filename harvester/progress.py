"""Live progress on a terminal: one line per running harvest (records, pages, rate, of completeListSize).

Drawn with click on stderr; log lines are printed above the board so that both stay readable.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from typing import TextIO

import click

from harvester.runs import Progress

BAR = 24


def render(p: Progress) -> str:
    """One status line for a harvest."""
    rate = f"{p.rate:,.0f} rec/s"
    if p.complete_list_size:
        done = min(1.0, p.records / p.complete_list_size)
        bar = "#" * int(done * BAR) + "-" * (BAR - int(done * BAR))
        count = f"[{bar}] {p.records:,}/{p.complete_list_size:,} records"
    else:
        count = f"{p.records:,} records"
    return (f"{p.source}: {count}, {p.pages} pages, {rate} (new {p.new}, updated {p.updated}, "
            f"deleted {p.deleted}, quarantined {p.quarantined})")


class Board:
    """Redraws its lines in place; `above()` prints a permanent line over them."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.lock = threading.Lock()

    def update(self, progress: Progress) -> None:
        with self.lock:
            self.lines[progress.source] = render(progress)
            self._redraw()

    def finish(self, source: str, text: str) -> None:
        with self.lock:
            self.lines.pop(source, None)
            self._clear()
            click.echo(text, file=self.stream)
            self._draw()

    def above(self, text: str) -> None:
        with self.lock:
            self._clear()
            click.echo(text, file=self.stream)
            self._draw()

    def _clear(self) -> None:
        if self.drawn:
            click.echo(f"\x1b[{self.drawn}F\x1b[J", file=self.stream, nl=False)
            self.drawn = 0

    def _draw(self) -> None:
        width = max(40, shutil.get_terminal_size((100, 20)).columns)
        for line in self.lines.values():
            click.echo(line[: width - 1], file=self.stream)
        self.drawn = len(self.lines)

    def _redraw(self) -> None:
        self._clear()
        self._draw()


class BoardHandler(logging.Handler):
    """A logging handler that writes above the board."""

    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.board.above(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the harvest
            self.handleError(record)
