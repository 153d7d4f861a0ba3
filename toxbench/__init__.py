"""toxbench: benchmark toxicity detectors from records, and fine-tune new ones.

The Python API (`toxbench.evaluate`, `load_run`, `list_runs`, `leaderboard`, `compare`, `sweep`,
`report`) lives in `toxbench.api` and is imported on first use (PEP 562), so `import toxbench`
loads nothing else."""

__version__ = "0.1.0"

_API = (
    "Evaluation",
    "OpenedRun",
    "compare",
    "evaluate",
    "leaderboard",
    "list_runs",
    "load_run",
    "report",
    "sweep",
)
__all__ = ["__version__", *_API]


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module("toxbench.api"), name)
    raise AttributeError(f"module 'toxbench' has no attribute {name!r}")
