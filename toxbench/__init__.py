"""toxbench: benchmark toxicity detectors from records, and fine-tune new ones.

The Python API (`toxbench.evaluate`, `toxbench.load_run`, `toxbench.list_runs`) lives in
`toxbench.api` and is imported on first use (PEP 562), so `import toxbench` loads nothing else."""

__version__ = "0.1.0"

__all__ = ["Evaluation", "__version__", "evaluate", "list_runs", "load_run"]
_API = {"Evaluation", "evaluate", "list_runs", "load_run"}


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module("toxbench.api"), name)
    raise AttributeError(f"module 'toxbench' has no attribute {name!r}")
