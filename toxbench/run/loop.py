"""Running the engine's coroutines from any caller: a script (no event loop: `asyncio.run`) or a
notebook, IPython or an async application (a loop already running in this thread, where
`asyncio.run` refuses: the coroutine then runs to completion on its own loop in a worker thread,
and the caller gets its result or its exception as if it had run here)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, also from inside a running event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="toxbench-engine") as pool:
        return pool.submit(asyncio.run, coroutine).result()
