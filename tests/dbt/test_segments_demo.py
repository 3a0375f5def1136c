"""The shipped example definitions build on the demo data set, and every segment's
members are exactly what the independent Python evaluator says the rules select."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _demo import DemoWarehouse, staged_rows
from _segments import members, project_dir
from _segments_eval import Evaluator

from segmentation.compiler.sources import load_definitions
from segmentation.language.model import Segment

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def pg_template(demo_segments: DemoWarehouse) -> str:
    """A copy of the shared demo build (tests/_demo.py): 3 accounts, 3000 contacts, the
    shipped definitions built for AS_OF."""
    assert demo_segments.dates == (AS_OF,)
    return demo_segments.database


@pytest.fixture(scope="module")
def demo(
    pg_database: str, demo_segments: DemoWarehouse
) -> Iterator[tuple[list[Segment], list[dict]]]:
    with (
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
        project_dir(demo_segments.project),
    ):
        yield load_definitions(None, None).segments, staged_rows(db)


def expected(segment: Segment, rows: list[dict], account: str) -> set[str]:
    return {
        r["contact_id"]
        for r in rows
        if r["account_id"] == account
        and (r["created_at"] is None or r["created_at"] <= AS_OF)
        and Evaluator(r, AS_OF).visit(segment.condition)
    }


def test_examples_match_the_rules_on_demo_data(
    demo: tuple[list[Segment], list[dict]], db: psycopg.Connection
) -> None:
    segments, rows = demo
    found = members(db)
    accounts = {r["account_id"] for r in rows}
    assert len(accounts) == 3
    checked = 0
    for seg in segments:
        if "prd-example" in seg.tags:
            continue  # the activity cookbook's templates: tests/dbt/test_activity_prd.py
        if "rfm" in seg.tags:
            continue  # the RFM split (rfm.* fields): tests/dbt/test_rfm.py
        for account in sorted(accounts) if seg.is_template else [seg.account]:
            want = expected(seg, rows, account)
            assert found.get((account, seg.key), set()) == want, (account, seg.key)
            checked += 1
    assert checked == 6
    # the rules select someone but not everyone
    loyal = found[("acme", "loyal_customers")]
    assert 0 < len(loyal) < sum(r["account_id"] == "acme" for r in rows)
