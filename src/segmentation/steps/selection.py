"""The dbt selections the steps share: one definition for build, clusters and analytics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

# Serving tables are written by publish (one transaction), never by dbt.
SERVING_PATH = "models/serving"
# The performance marts read segments_history, so they are built after record_history
# (pipeline.build_analytics), not with the candidate.
ANALYTICS_PATH = "models/analytics/performance"
BUILD_EXCLUDED_PATHS = (SERVING_PATH, ANALYTICS_PATH)

SERVING_MODELS = f"path:{SERVING_PATH}"
ANALYTICS_MODELS = f"path:{ANALYTICS_PATH}"
BUILD_EXCLUDE = " ".join(f"path:{path}" for path in BUILD_EXCLUDED_PATHS)


def run_vars(
    as_of: dt.date | None,
    accounts: Iterable[str] | None = None,
    excluded: Iterable[str] = (),
) -> dict[str, Any]:
    """dbt vars for a run. Without an as-of date each account uses today in its own timezone.
    `accounts` (None: every account) minus `excluded` is the run's scope (int_segment_as_of,
    segment_catalogue and the membership union read vars accounts / excluded_accounts)."""
    result: dict[str, Any] = {"as_of": as_of.isoformat()} if as_of else {}
    if accounts is not None:
        result["accounts"] = sorted(accounts)
    if excluded:
        result["excluded_accounts"] = sorted(excluded)
    return result
