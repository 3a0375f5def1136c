"""The shipped example definitions build on the demo data set, and every segment's
members are exactly what the independent Python evaluator says the rules select."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import psycopg
import pytest
from _segments import PROJECT_DIR, build, copy_project, members, project_dir
from _segments_eval import Evaluator

from segmentation.compiler.sources import load_definitions
from segmentation.language.model import Segment
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 22)
TIMESTAMPS = ("created_at", "updated_at", "consent_updated_at", "company.created_at")


@pytest.fixture(scope="module")
def demo(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Segment], list[dict]]]:
    project = copy_project(tmp_path_factory.mktemp("segments_demo") / "project")
    shutil.rmtree(project / "segment_defs")
    shutil.copytree(PROJECT_DIR / "segment_defs", project / "segment_defs")
    demo_data.load(accounts=3, contacts=3000, seed=7, anchor=AS_OF, dbname=pg_database)
    with psycopg.connect(dbname=pg_database, autocommit=True) as db, project_dir(project):
        build(AS_OF.isoformat())
        segments = load_definitions(None, None).segments
        cur = db.execute(
            'select c.*, a.timezone, co.company_name as "company.company_name", '
            'co.employee_count as "company.employee_count", '
            'co.annual_revenue as "company.annual_revenue", '
            'co.created_at as "company.created_at" '
            "from segments_staging.stg_crm__contacts as c "
            "join segments_staging.stg_crm__accounts as a using (account_id) "
            "left join segments_audit.int_segment_primary_companies as co "
            "using (account_id, contact_id)"
        )
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for row in rows:
            for column in TIMESTAMPS:
                if row[column] is not None:
                    row[column] = row[column].astimezone(ZoneInfo(row["timezone"])).date()
        yield segments, rows


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
