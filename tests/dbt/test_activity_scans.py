"""Adding segments adds feature columns, never scans of activity tables.

Render N has: conditions, then N + 5 more with different filters on the same tables, compile
with dbt, and inspect (a) the compiled SQL: each activity staging model is read by exactly
one feature model, once; (b) PostgreSQL's EXPLAIN plan of each feature model: the number of
scans of the raw activity table equals that of reading its staging view once, whatever the
number of features. No timings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _activity import AS_OF, parse_condition, project_copy

from segmentation.compiler import features
from segmentation.warehouse.dbt_runner import run_dbt

BASE = [
    "has: {object: deals, where: {field: status, op: eq, value: open}}",
    "has: {object: orders, within: {last_days: 90}, count: {gte: 2}}",
    "has: {object: tickets, within: {last_days: 30}, count: {gte: 3}}",
]
MORE = [
    "has: {object: deals, where: {field: status, op: eq, value: won}, sum: {field: amount, gt: 5}}",
    "has: {object: deals, within: {last_days: 7}}",
    "has: {object: deals, where: {field: expected_close_date, op: anniversary_within_next, "
    "value: {days: 30}}}",
    "has: {object: deals, max: {field: closed_at, op: within_last, value: {days: 30}}}",
    "has: {object: orders, where: {field: status, op: eq, value: refunded}}",
    "has: {object: tickets, where: {field: priority, op: in, value: [high, urgent]}}",
]
TABLES = {"deals": "stg_crm__deals", "orders": "stg_crm__orders", "tickets": "stg_crm__tickets"}


def compiled_features(project: Path, snippets: list[str]) -> dict[str, str]:
    nodes = [parse_condition(s) for s in snippets]
    features.render_feature_models(project, features.collect_features(nodes))
    result = run_dbt(
        ["compile", "--no-partial-parse", "--select", "features"], {"as_of": AS_OF.isoformat()}
    )
    return {r.node.name: r.node.compiled_code for r in result.result.results}


def relation_scans(plan: Any, relation: str) -> int:
    """Plan nodes that read `relation` (any scan type)."""
    count = 0
    if isinstance(plan, dict):
        if plan.get("Relation Name") == relation:
            count += 1
        for value in plan.values():
            count += relation_scans(value, relation)
    elif isinstance(plan, list):
        for item in plan:
            count += relation_scans(item, relation)
    return count


def explain(conn: psycopg.Connection, query: str) -> Any:
    return conn.execute(f"explain (format json) {query}").fetchone()[0]


@pytest.fixture(scope="module")
def project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with project_copy(tmp_path_factory.mktemp("scans_project")) as path:
        run_dbt(
            ["run", "--no-partial-parse", "--select", "staging int_segment_as_of"],
            {"as_of": AS_OF.isoformat()},
        )
        yield path


def test_more_segments_add_columns_not_scans(project: Path, db: psycopg.Connection) -> None:
    small = compiled_features(project, BASE)
    large = compiled_features(project, BASE + MORE)
    for obj, model in TABLES.items():
        name = f"int_contact_features__{obj}"
        for compiled in (small, large):
            # the activity staging relation is read once, by its own feature model only
            reads = {n: sql.count(f'."{model}"') for n, sql in compiled.items()}
            assert reads == {n: (1 if n == name else 0) for n in compiled}, reads
        small_cols = len(re.findall(r"\bas f_[0-9a-f]{12}\b", small[name]))
        large_cols = len(re.findall(r"\bas f_[0-9a-f]{12}\b", large[name]))
        assert large_cols > small_cols  # more features ...

        # ... and as many scans of the activity data as reading the staging relation once
        # (the staging table itself, or the raw table under a staging view)
        def scans(query: str, obj: str = obj, model: str = model) -> int:
            plan = explain(db, query)
            return relation_scans(plan, obj) + relation_scans(plan, model)

        once = scans(f"select * from segments_staging.{model}")
        assert once >= 1
        assert scans(small[name]) == once
        assert scans(large[name]) == once
        plan_text = json.dumps(explain(db, large[name]))
        assert plan_text.count('"Node Type": "Aggregate"') >= 1
