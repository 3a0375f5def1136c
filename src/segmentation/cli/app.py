"""The `segments` application: the typer app, the consoles and the error handling that
every command shares. Commands live in modules named for what they do (authoring,
operations) and register themselves on `app`."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.measure import Measurement
from rich.table import Table

from segmentation.errors import DefinitionError, SegmentationError

# Exit codes (docs/authoring.md, "Exit codes"): click gives 2 for a usage error.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="segments",
    help="Customer segments from YAML: validate, preview, build, audit and publish for Broadcast.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The PostgreSQL server.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# soft_wrap: machine-readable lines (file:line:col, exports, JSON) must never be wrapped.
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def out(text: str) -> None:
    console.print(text, markup=False)


def note(text: str) -> None:
    """A progress or summary line for a person, on stderr so stdout stays pipeable."""
    err_console.print(text, markup=False)


def warn(text: str) -> None:
    err_console.print(f"warning: {text}", style="yellow", markup=False)


def error(text: str) -> None:
    err_console.print(f"error: {text}", style="bold red", markup=False)


def print_definition_errors(exc: DefinitionError) -> None:
    """The one place that formats definition errors: `file:line:col: message`."""
    for issue in exc.issues:
        out(str(issue))
    count = len(exc.issues)
    note(f"{count} error{'s' if count != 1 else ''}")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"'{text}' is not a date like 2026-11-22") from exc


AsOf = Annotated[
    dt.date | None,
    typer.Option(
        "--as-of",
        parser=parse_date,
        metavar="DATE",
        help="As-of date, YYYY-MM-DD (default: today in the account's timezone).",
    ),
]
Offline = Annotated[
    bool, typer.Option("--offline", help="Don't read accounts and packages from the database.")
]


class TextOrJson(StrEnum):
    text = "text"
    json = "json"


Format = Annotated[
    TextOrJson,
    typer.Option("--format", help="text for people, or json: one document on stdout, for bots."),
]


def print_table(table: Table) -> None:
    """A rich table on stdout, never squeezed to 80 columns when piped (logs, CI)."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width or console.is_terminal:
        console.print(table)
        return
    previous = console.width
    console.width = natural
    try:
        console.print(table)
    finally:
        console.width = previous


P = ParamSpec("P")
R = TypeVar("R")


def command(*args: object, **kwargs: object) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`app.command`, with the shared error handling: a SegmentationError becomes one
    `error:` line and exit code 1, never a traceback."""
    return register_on(app, *args, **kwargs)


def register_on(
    target: typer.Typer, *args: object, **kwargs: object
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*a: P.args, **kw: P.kwargs) -> R:
            try:
                return func(*a, **kw)
            except DefinitionError as exc:
                print_definition_errors(exc)
                raise typer.Exit(EXIT_FAILED) from exc
            except SegmentationError as exc:
                error(str(exc))
                raise typer.Exit(EXIT_FAILED) from exc

        target.command(*args, **kwargs)(wrapper)
        return wrapper

    return decorate


def db_command(*args: object, **kwargs: object) -> Callable[[Callable[P, R]], Callable[P, R]]:
    return register_on(db_app, *args, **kwargs)


@app.callback()
def configure(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
) -> None:
    """Customer segments from YAML: validate, preview, build, audit and publish for Broadcast."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    root = logging.getLogger("segmentation")
    # Library code logs; the CLI renders those logs with rich, on stderr.
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=err_console, show_path=False, markup=False))
    root.setLevel(level)
