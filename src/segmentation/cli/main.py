"""The `segments` command line. Every command is a thin call into `segmentation.steps`."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

# The command modules register themselves on the app when imported.
from segmentation.cli import authoring, inspect, operations, report, review, scaffold  # noqa: F401
from segmentation.cli.app import app, db_app


def _load_plugins() -> None:
    # Commands of installed extensions, e.g. segmentation_dev's `db up|down|status` (the local
    # cluster) and `demo-data`: found by entry point, so the runtime never imports them.
    for plugin in entry_points(group="segmentation.cli"):
        plugin.load()({"": app, "db": db_app})


_load_plugins()


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code (0 ok, 1 failed check or input, 2 usage)."""
    try:
        result = typer.main.get_command(app).main(args=argv, prog_name="segments")
    except SystemExit as exc:  # standalone mode: typer renders usage errors, then exits
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
