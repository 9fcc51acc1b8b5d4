"""Terminal output: sanitised server text, colours, tables and the small formatters the commands share."""

import json
import re
from collections.abc import Iterable
from datetime import datetime

import click

STATS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
COLORS = {"ok": "green", "changed": "yellow", "failed": "red", "skipping": "cyan", "unreachable": "magenta",
          "successful": "green", "canceled": "yellow", "timeout": "yellow", "queued": "blue", "running": "blue"}
# Server text (Ansible output, reasons, descriptions) may carry tenant input: keep it from driving the terminal.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def clean(text: str) -> str:
    return CONTROL.sub("", text.replace("\r\n", "\n"))


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def paint(text: str, key: str) -> str:
    """Colored by outcome; click.echo drops the color when the output is not a terminal."""
    return click.style(text, fg=COLORS.get(key), bold=key in ("failed", "unreachable"))


class Painted(str):
    """A table cell colored after padding, so escape codes never count towards column widths."""

    key: str

    def __new__(cls, text: str, key: str | None = None):
        cell = super().__new__(cls, text)
        cell.key = key or text
        return cell


def table(headers: list[str], rows: list[list], right: Iterable[int] = ()) -> str:
    cells = [[clean("-" if c is None else str(c)).replace("\n", " ") for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right, keys = set(right), [[getattr(c, "key", None) for c in row] for row in [headers, *rows]]
    lines = []
    for row, row_keys in zip(cells, keys, strict=True):
        parts = []
        for i, (cell, width, key) in enumerate(zip(row, widths, row_keys, strict=True)):
            pad = " " * (width - len(cell))
            text = paint(cell, key) if key else cell
            parts.append(pad + text if i in right else text + pad)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def stats_table(stats: dict | None) -> str:
    rows = [[host, *(counts.get(k, 0) for k in STATS)] for host, counts in sorted((stats or {}).items())]
    return table(["HOST", *(k.upper() for k in STATS)], rows, right=range(1, len(STATS) + 1))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def describe(who: dict) -> str:
    if who.get("tenant"):
        return f"{who['subject']} ({who['role']} of tenant {who['tenant']})"
    return f"{who['subject']} ({who['role']})"


def exit_with(code: int):
    click.get_current_context().exit(code)
