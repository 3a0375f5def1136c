"""The pipeline steps. The CLI (`segments run`) and the Airflow DAG both call these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from segmentation.dbt_invoke import run_dbt


def dbt_vars(as_of: dt.date | None) -> dict[str, Any]:
    """dbt vars for a run. Without an as-of date each account uses today in its own timezone."""
    return {"as_of": as_of.isoformat()} if as_of else {}


def check_sources() -> Any:
    """`dbt source freshness`: stale sources warn, missing or empty ones fail."""
    return run_dbt(["source", "freshness"])


def build_staging(as_of: dt.date | None = None) -> Any:
    """Build and test the staging layer."""
    return run_dbt(["build", "--select", "staging"], dbt_vars(as_of))


def run(as_of: dt.date | None = None) -> None:
    """Everything that exists of the pipeline, in order."""
    build_staging(as_of)
