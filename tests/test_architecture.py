"""The layers import only downward (docs/architecture.md): every `import toxbench...` in the package,
at module level or inside a function, is read from the source and checked against the rule."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toxbench"

# (rank, parts): a module may import modules of its own rank or lower, never higher.
RANKS = {
    "types": 0,
    "errors": 0,
    "_util": 0,
    "redaction": 0,
    "": 0,  # "" is toxbench/__init__.py (the version)
    "data": 1,
    "model_registry": 2,  # cards of trained models: read by the finetuned adapter, written by finetune/
    "adapters": 3,
    "explain": 3,  # explain/: span metrics, saliency, extraction; needs no adapter
    "records": 4,
    "explanations": 4,
    "run": 5,
    "analysis": 6,
    "finetune": 6,  # side by side: neither imports the other
    "cli": 7,
    "__main__": 7,
    "api": 7,  # api: the Python front door, beside the CLI
}
FORBIDDEN_SIDEWAYS = {
    ("analysis", "finetune"),
    ("finetune", "analysis"),
    ("model_registry", "adapters"),
    ("explain", "adapters"),
    ("adapters", "explain"),
    ("explanations", "records"),
    ("records", "explanations"),
}


def part_of(module: str) -> str:
    """`toxbench.run.engine` -> "run"; `toxbench` -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every toxbench module the file imports, wherever the import statement is."""
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "toxbench"]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "toxbench"
        ):
            out.append((node.lineno, node.module))
            if node.module == "toxbench":  # from toxbench import cli
                out += [(node.lineno, f"toxbench.{a.name}") for a in node.names if a.name != "__version__"]
    return out


def violations(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        mine = part_of(module)
        for line, target in imports_of(path):
            theirs = part_of(target)
            if theirs not in RANKS or mine not in RANKS:
                found.append(
                    f"{path}:{line}: {theirs or mine!r} has no layer in this test; add it to RANKS and docs/architecture.md"
                )
            elif RANKS[theirs] > RANKS[mine] or (mine, theirs) in FORBIDDEN_SIDEWAYS:
                found.append(f"{path}:{line}: {module} ({mine}) imports {target} ({theirs}), which is not below it")
    return found


def test_layers_import_only_downward():
    assert violations(PACKAGE) == []


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an adapter that imports the engine, data that imports analysis, and
    analysis that imports finetune are all reported."""
    pkg = tmp_path / "toxbench"
    for rel, text in {
        "adapters/bad.py": "def f():\n    from toxbench.run.engine import run_requests\n",
        "data/bad.py": "import toxbench.analysis.metrics\n",
        "analysis/bad.py": "from toxbench.finetune import sft\n",
        "run/fine.py": "from toxbench.adapters.base import Adapter\nfrom toxbench import types\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    found = violations(pkg)
    assert len(found) == 3 and all("not below it" in v for v in found)
    assert {v.split(":")[0].rsplit("/", 2)[-2] for v in found} == {"adapters", "data", "analysis"}


def test_nothing_outside_the_cli_imports_it():
    importers = [
        p
        for p in PACKAGE.rglob("*.py")
        if part_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) not in ("cli", "__main__")
        and any(t.startswith("toxbench.cli") for _, t in imports_of(p))
    ]
    assert importers == []


def module_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at any depth of the file, `from a import b` counting
    b when it is a module); a package's `__init__` is its own node."""
    modules = {
        ".".join(p for p in path.relative_to(package.parent).with_suffix("").parts if p != "__init__"): path
        for path in package.rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and node.module.split(".")[0] == package.name
            ):
                deps |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
                deps |= {node.module} if node.module in modules else set()
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
        graph[name] = deps - {name, package.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_through_others():
    """No import cycle, inside a layer too (a lazy import inside a function counts)."""
    assert cycles(module_graph(PACKAGE)) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "toxbench"
    for rel, text in {
        "analysis/a.py": "def f():\n    from toxbench.analysis.b import g\n",
        "analysis/b.py": "from toxbench.analysis import c\n",
        "analysis/c.py": "import toxbench.analysis.a\n",
        "analysis/d.py": "from toxbench.analysis.a import f\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    assert cycles(module_graph(pkg)) == [["toxbench.analysis.a", "toxbench.analysis.b", "toxbench.analysis.c"]]
