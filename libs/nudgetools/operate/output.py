"""What the commands print: rich tables for people, JSON or YAML for scripts (stdout), and
progress bars on stderr, drawn only on a terminal so a script's stderr stays clean."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from ruamel.yaml import YAML

FORMATS = ("table", "json", "yaml")


def stdout() -> Console:
    # Wide enough that ids and keys are not folded when stdout is a pipe (rich assumes 80).
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200, highlight=False)


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False)


def plain(message: Message) -> dict[str, Any]:
    """A message as JSON-like data: proto field names, enums by name, unset fields left out."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def dump(data: Any, output: str) -> None:
    """`data` as JSON or YAML on stdout."""
    if output == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    buffer = io.StringIO()
    y.dump(data, buffer)
    sys.stdout.write(buffer.getvalue())


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # Text, not str: values such as `[checkout]` are the user's, not rich markup.
    t = Table(title=Text(title) if title else None, title_justify="left", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*(Text("" if v is None else str(v)) for v in row))
    stdout().print(t)


def warn(text: str) -> None:
    print(text, file=sys.stderr)


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while the block runs (a spinner when `total` is unknown);
    yields `advance(n)`. Nothing is drawn when stderr is not a terminal."""
    console = stderr()
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
