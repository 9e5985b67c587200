"""Progress reporting for long jobs, kept out of the library's logic.

Library functions take a :class:`Progress`; the CLI passes a rich progress bar (or nothing with
``--quiet``), tests and the API pass nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def track(self, items: Iterable[T], total: int, description: str) -> Iterator[T]: ...

    def note(self, message: str) -> None: ...


class SilentProgress:
    """Reports nothing."""

    def track(self, items: Iterable[T], total: int, description: str) -> Iterator[T]:
        yield from items

    def note(self, message: str) -> None:
        pass


class RichProgress:
    """A rich progress bar on stderr, so stdout stays clean for machine-readable output."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    def track(self, items: Iterable[T], total: int, description: str) -> Iterator[T]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichBar

        with RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                bar.advance(task)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{message}[/dim]")
