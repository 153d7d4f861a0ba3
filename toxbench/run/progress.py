"""Progress bars on stderr-friendly rich consoles: one for a run's samples (rate, ETA, problems,
cost, cache hits) and one for counting items (published files replayed). Kept apart from the
engine, so the engine only reports counts and a run without a terminal shows nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

NOTICE_AFTER_S = 1.0  # a log hears of preparing only when it takes this long: an error a moment later stays one line


def eta(remaining: int, finished: int, elapsed: float) -> str:
    """Time left at the run's average rate since it started. Rich's own estimate looks at the last
    seconds only, so a local model that records 8 samples at once every minute showed 0:00:01."""
    if finished == 0:
        return "-:--:--"
    seconds = int(remaining * elapsed / finished)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextmanager
def sample_progress(description: str, total: int, done: int, enabled: bool = True) -> Iterator[Callable]:
    """A bar from `done` to `total` samples; yields `advance(stats)`, called once per record."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]}"),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, disable=not enabled, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=done, rate="", eta="-:--:--", info="")
        start = time.monotonic()
        finished = 0

        def advance(stats) -> None:
            nonlocal finished
            finished += 1
            elapsed = max(time.monotonic() - start, 1e-6)
            problems = {
                **{k: v for k, v in stats.statuses.items() if k != "ok"},
                **{f"retry:{k}": v for k, v in stats.retries.items()},
            }
            info = (
                " ".join(f"{k} {v}" for k, v in problems.items())
                + (f"  ${stats.cost_usd:.4f}" if stats.cost_usd else "")
                + f"  cache {stats.cache_hits}"
            )
            progress.update(
                task,
                advance=1,
                rate=f"{finished / elapsed:.1f}/s",
                eta=eta(total - done - finished, finished, elapsed),
                info=info.strip(),
            )

        yield advance


@contextmanager
def preparing(what: str, enabled: bool = True, doing: str = "loading the model") -> Iterator[None]:
    """A spinner while an adapter loads its model (or trains it: the baseline's first run takes a
    quarter of a minute), so a run never starts in silence."""
    if not enabled:
        yield
        return
    import threading

    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    message = f"preparing {what}: {doing}"
    if not console.is_terminal:  # a log gets the line, once preparing has taken a second (an API client takes none)
        timer = threading.Timer(NOTICE_AFTER_S, lambda: console.print(message, markup=False))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
        return
    with console.status(message + "..."):  # a terminal gets a spinner, erased when done
        yield


@contextmanager
def item_progress(description: str, total: int, console=None) -> Iterator[Callable]:
    """A transient bar over `total` items; yields `advance(item)`. It refreshes only when advanced
    (no refresh thread), so it is safe around code that forks worker processes."""
    from rich.progress import Progress

    with Progress(transient=True, console=console, auto_refresh=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(_item=None) -> None:
            progress.advance(task)
            progress.refresh()

        yield advance
