"""MkDocs hook: the reference pages are generated from the code at build time, so they cannot
drift from it. `<!-- toxbench:cli -->` becomes every command with its arguments and options (read
from the Typer app), `<!-- toxbench:adapters -->` every adapter with its `--model-arg` keys (read
from each constructor's signature and `Args:` docstring, as `toxbench adapters ADAPTER` prints)."""

from __future__ import annotations

import inspect
import json

CLI_MARK = "<!-- toxbench:cli -->"
ADAPTERS_MARK = "<!-- toxbench:adapters -->"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(param) -> str:
    value = param.default
    if value is None or callable(value) or param.required or type(value).__name__ == "Sentinel":
        return ""
    if isinstance(value, bool):
        return "" if param.is_flag and not value else json.dumps(value)
    if isinstance(value, (list, tuple)) and not value:
        return ""
    return f"`{value}`"


def _command_markdown(path: list[str], command, level: int) -> list[str]:
    out = [f"{'#' * level} `{' '.join(path)}`", ""]
    doc = inspect.cleandoc(command.help or "")
    if doc:
        out += [doc.split("\n\nExamples:")[0], ""]
    arguments = [
        p.name.upper() if p.required else f"[{p.name.upper()}]"
        for p in command.params
        if p.param_type_name == "argument"
    ]
    group = ["COMMAND [ARGS]..."] if hasattr(command, "commands") else []
    out += ["```text", " ".join([*path, "[OPTIONS]", *arguments, *group]), "```", ""]
    params = [
        p
        for p in command.params
        if not getattr(p, "hidden", False) and p.name not in ("install_completion", "show_completion")
    ]
    if params:
        out += ["| argument or option | default | meaning |", "|---|---|---|"]
        for p in params:
            if p.param_type_name == "argument":
                name = f"`{p.name.upper()}`"
            else:
                name = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            out.append(f"| {name} | {_cell(_default(p))} | {_cell(getattr(p, 'help', '') or '')} |")
        out.append("")
    if command.epilog:
        examples = [e for e in command.epilog.split("\n\n")[1:] if e.strip()]
        out += ["Examples:", "", "```bash", *examples, "```", ""]
    if hasattr(command, "commands"):  # a group (typer ships its own click)
        for name in sorted(command.commands):
            out += _command_markdown([*path, name], command.commands[name], min(level + 1, 4))
    return out


def cli_reference() -> str:
    import typer.main

    from toxbench.cli import app

    root = typer.main.get_command(app)
    out = []
    for name in sorted(root.commands):
        out += _command_markdown(["toxbench", name], root.commands[name], 2)
    return "\n".join(out)


def adapters_reference() -> str:
    from toxbench.adapters.registry import adapter_names, get_adapter, model_args

    out = []
    for name in adapter_names():
        cls = get_adapter(name)
        out += [f"## `{name}`", "", f"{cls.kind}: {cls.description}.", ""]
        keys = model_args(name)
        if keys:
            out += ["| `--model-arg` | default | meaning |", "|---|---|---|"]
            for key in keys:
                default = "(required)" if key.required else json.dumps(key.default, ensure_ascii=False, default=str)
                if len(default) > 40:
                    default = default[:37] + "..."
                out.append(f"| `{key.name}` | `{_cell(default)}` | {_cell(key.meaning)} |")
            out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if ADAPTERS_MARK in markdown:
        markdown = markdown.replace(ADAPTERS_MARK, adapters_reference())
    return markdown
