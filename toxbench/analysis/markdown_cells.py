"""Texts from records (run labels, model names, notes) as Markdown table cells: a `|` would end
the cell and break the table, and `<script>` would put raw HTML into a page that renders it."""

from __future__ import annotations

import html


def cell(text: object) -> str:
    """Plain text for a table cell: HTML escaped, `|` escaped, on one line."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def code(text: object) -> str:
    """Text shown as a code span in a table cell: inside backticks HTML is shown, not run, and GFM
    takes `\\|` as a pipe; a backtick, which would close the span, becomes a quote."""
    return "`" + " ".join(str(text).split()).replace("`", "'").replace("|", "\\|") + "`"
