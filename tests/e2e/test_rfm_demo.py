"""RFM on the demo data set after a whole pipeline run (check_sources .. finish): every
staged contact has exactly one rfm_scores row with scores in 1..5, and the shipped RFM
template group is mutually exclusive and collectively exhaustive, in the candidate and in
what Broadcast reads. The oracle comparison on a fixture is tests/dbt/test_rfm.py."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _demo import D1, DemoWarehouse

from segmentation.language.rfm import RFM_SEGMENTS

pytestmark = pytest.mark.slow

AS_OF = D1

# Staged contacts that existed on the as-of date (segment members and RFM see only those).
EXISTING = (
    "select c.account_id, c.contact_id from segments_staging.stg_crm__contacts as c "
    "join segments_audit.int_segment_as_of as a using (account_id) "
    "where c.created_at is null "
    "or cast((c.created_at at time zone a.timezone) as date) <= a.as_of_date"
)


@pytest.fixture(scope="module")
def pg_template(demo_day1: DemoWarehouse) -> str:
    """A copy of the shared demo warehouse (tests/_demo.py): 2 accounts, 2000 contacts,
    run through the whole pipeline for AS_OF (quarantined segments published the rest)."""
    assert demo_day1.dates[-1] == AS_OF
    return demo_day1.database


@pytest.fixture(scope="module")
def ran(pg_database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dbname=pg_database, autocommit=True) as db:
        yield db


def test_every_staged_contact_has_one_rfm_row(ran: psycopg.Connection) -> None:
    staged = set(ran.execute(EXISTING).fetchall())
    assert len(staged) > 1500  # 2000 generated, minus what staging rejects
    rows = ran.execute(
        "select account_id, contact_id, as_of, r_score, f_score, m_score, rfm_segment, "
        "recency_days, frequency from segments_marts.rfm_scores"
    ).fetchall()
    keys = [(r[0], r[1]) for r in rows]
    assert len(keys) == len(set(keys))
    assert set(keys) == staged
    assert {r[2] for r in rows} == {AS_OF}
    assert all(1 <= score <= 5 for r in rows for score in r[3:6])
    segments = {r[6] for r in rows}
    assert segments <= set(RFM_SEGMENTS)
    assert len(segments) >= 6, segments  # the demo data spreads over the grid
    buyers = [r for r in rows if r[6] != "no_orders"]
    assert buyers and all(r[7] is not None and r[7] >= 0 for r in buyers)
    # quintiles: in each account every score is used
    for account in {r[0] for r in buyers}:
        mine = [r for r in buyers if r[0] == account]
        if len(mine) >= 5:
            assert {r[3] for r in mine} == {1, 2, 3, 4, 5}


def test_rfm_group_is_exclusive_and_exhaustive(ran: psycopg.Connection) -> None:
    staged = set(ran.execute(EXISTING).fetchall())
    scores = dict(
        ((a, c), s)
        for a, c, s in ran.execute(
            "select account_id, contact_id, rfm_segment from segments_marts.rfm_scores"
        ).fetchall()
    )
    for relation in (
        "segments_audit.segment_group_assignments",
        "segments_serving.group_assignments",
    ):
        rows = ran.execute(
            f"select account_id, contact_id, segment_key from {relation} where group_key = 'rfm'"
        ).fetchall()
        keys = [(r[0], r[1]) for r in rows]
        assert len(keys) == len(set(keys)), relation  # exclusive
        assert set(keys) == staged, relation  # exhaustive
        assert not any(r[2] == "rfm_unscored" for r in rows), relation  # fallback stays empty
        assert {(r[0], r[1]): r[2] for r in rows} == {k: f"rfm_{s}" for k, s in scores.items()}, (
            relation
        )
    accounts = {a for a, _ in staged}
    assert len(accounts) == 2
    catalogued = ran.execute(
        "select account_id, segment_keys from segments_audit.int_group_catalogue "
        "where group_key = 'rfm'"
    ).fetchall()
    assert {a for a, _ in catalogued} == accounts  # every account got the template group
    assert all(keys == [f"rfm_{s}" for s in RFM_SEGMENTS] for _, keys in catalogued)
