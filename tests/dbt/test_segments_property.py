"""Property: for random condition trees, the compiled SQL selects exactly the contacts a
small independent Python evaluator selects, on the same staged rows.

Each hypothesis example is a LIST of trees, compiled in ONE dbt call and evaluated in ONE
query, so dbt runs only a few times."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import psycopg
import pytest
from _segments import (
    compile_predicates,
    copy_project,
    evaluate_predicates,
    insert_accounts,
    insert_contacts,
    project_dir,
)
from _segments_eval import Evaluator, parse_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation.language.operators import CALENDAR_PERIODS, MAX_DURATION
from segmentation.language.schema import build_schema
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = dt.date(2024, 3, 31)  # a month end in a leap year
TZ = "Asia/Jakarta"
CITIES = ["Jakarta", "Bandung", "Surabaya", "Medan", None]
NAMES = ["Ana", "ana maria", "Budi O'Hara", "CICI", "Dede", None]
TAGS = ["vip", "newsletter", "do_not_contact", "churn_risk"]
DATES = ["2024-02-29", "2024-03-31", "2024-01-31", "2023-03-31", "2023-12-31", "2024-03-01"]


def contacts(n: int = 40) -> list[dict[str, Any]]:
    rng = random.Random(20240331)
    rows = []
    for i in range(n):
        created = dt.datetime.fromisoformat(rng.choice(DATES)) + dt.timedelta(
            hours=rng.choice([0, 6, 18, 23])
        )
        vip = rng.choice([0, 1, 2, 3, "2", "x", None, True, 1.5])
        rows.append(
            {
                "contact_id": f"p{i:02d}",
                "account_id": "acme",
                "city": rng.choice(CITIES),
                "full_name": rng.choice(NAMES),
                "loyalty_points": rng.choice([0, 10, 100, 4999, 5000, None]),
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
                "consent_whatsapp": rng.choice([True, False, None]),
                "date_of_birth": rng.choice([*DATES, "1990-04-05", None]),
                "created_at": None if i % 13 == 5 else created.isoformat() + "+00:00",
                "custom_fields": {} if vip is None else {"vip_level": vip},
            }
        )
    return rows


def duration() -> st.SearchStrategy[dict[str, int]]:
    """One unit and a count up to 400, within the language's bound for that unit."""
    return st.sampled_from(["days", "weeks", "months", "years"]).flatmap(
        lambda unit: st.builds(lambda n: {unit: n}, st.integers(0, min(400, MAX_DURATION[unit])))
    )


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    text_value = st.sampled_from(["Jakarta", "ana", "Ana", "a", "Budi O'Hara", "x'y", ""])
    texts = st.one_of(
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["city", "full_name"]),
            st.sampled_from(
                [
                    *("eq", "neq", "ieq", "contains", "not_contains", "icontains"),
                    *("starts_with", "ends_with"),
                ]
            ),
            text_value,
        ),
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["city", "full_name"]),
            st.sampled_from(["in", "not_in"]),
            st.lists(text_value, min_size=1, max_size=3),
        ),
        st.builds(
            lambda f, v: {"field": f, "op": "matches", "value": v},
            st.sampled_from(["city", "full_name"]),
            st.sampled_from(["^J", "a$", "an", "^[A-C]"]),
        ),
    )
    number = st.sampled_from([0, 10, 100, 4999, 5000, 2, 1.5])
    numbers = st.one_of(
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["loyalty_points", "custom.vip_level"]),
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]),
            number,
        ),
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": sorted(v)},
            st.sampled_from(["loyalty_points", "custom.vip_level"]),
            st.sampled_from(["between", "not_between"]),
            st.lists(number, min_size=2, max_size=2),
        ),
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["loyalty_points", "custom.vip_level"]),
            st.sampled_from(["in", "not_in"]),
            st.lists(number, min_size=1, max_size=3),
        ),
    )
    date_value = st.sampled_from(DATES)
    dates = st.one_of(
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["created_at", "date_of_birth"]),
            st.sampled_from(["before", "after", "on"]),
            date_value,
        ),
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": sorted(v)},
            st.sampled_from(["created_at", "date_of_birth"]),
            st.sampled_from(["between", "not_between"]),
            st.lists(date_value, min_size=2, max_size=2),
        ),
        st.builds(
            lambda f, op, v: {"field": f, "op": op, "value": v},
            st.sampled_from(["created_at", "date_of_birth"]),
            st.sampled_from(
                ["within_last", "more_than_ago", "within_next", "anniversary_within_next"]
            ),
            duration(),
        ),
        st.builds(
            lambda f, v: {"field": f, "op": "in_calendar", "value": v},
            st.sampled_from(["created_at", "date_of_birth"]),
            st.sampled_from(CALENDAR_PERIODS),
        ),
    )
    others = st.one_of(
        st.builds(
            lambda op: {"field": "consent_whatsapp", "op": op},
            st.sampled_from(["is_true", "is_false", "is_set", "is_not_set"]),
        ),
        st.builds(
            lambda op, v: {"field": "tags", "op": op, "value": v},
            st.sampled_from(["contains_any", "contains_all", "contains_none"]),
            st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
        ),
        st.builds(
            lambda f, op: {"field": f, "op": op},
            st.sampled_from(
                ["tags", "city", "full_name", "loyalty_points", "created_at", "custom.vip_level"]
            ),
            st.sampled_from(["is_set", "is_not_set"]),
        ),
    )
    return st.one_of(texts, numbers, dates, others)


def trees() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        conditions(),
        lambda children: st.one_of(
            st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, children),
        ),
        max_leaves=8,
    )


@pytest.fixture(scope="module")
def staged(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict]]:
    project = copy_project(tmp_path_factory.mktemp("segments_property") / "project")
    with psycopg.connect(dbname=pg_database, autocommit=True) as db, project_dir(project):
        for table in ("accounts", "contacts"):
            db.execute(f"truncate crm_raw.{table}")
        insert_accounts(db, {"acme": TZ})
        insert_contacts(db, contacts())
        run_dbt(["run", "--select", "+stg_crm__contacts", "+stg_crm__accounts"])
        cur = db.execute(
            "select contact_id, city, full_name, loyalty_points, tags, consent_whatsapp, "
            "date_of_birth, created_at, custom_fields from segments_staging.stg_crm__contacts"
        )
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for row in rows:
            if row["created_at"] is not None:
                row["created_at"] = row["created_at"].astimezone(ZoneInfo(TZ)).date()
        assert len(rows) == 40
        yield rows


@pytest.fixture(scope="module")
def project(staged: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    path = copy_project(tmp_path_factory.mktemp("segments_property_compile") / "project")
    with project_dir(path):
        yield


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(trees(), min_size=60, max_size=60))
def test_sql_agrees_with_python(
    staged: list[dict], project: None, db: psycopg.Connection, batch: list[dict]
) -> None:
    schema = jsonschema.Draft202012Validator(build_schema())
    nodes = []
    for tree in batch:
        # every generated tree is valid for the validator and for the published schema
        nodes.append(parse_node(tree))
        doc = {"key": "k", "name": "n", "account": "acme", "owner": "o", "visibility": "team"}
        assert list(schema.iter_errors({**doc, "where": tree})) == []
    predicates = compile_predicates([n.to_json() for n in nodes])
    selected = evaluate_predicates(db, predicates, AS_OF.isoformat(), TZ)
    # the trees separate members from non-members (not all empty or everyone)
    assert any(0 < len(members) < len(staged) for members in selected)
    for tree, node, sql_members in zip(batch, nodes, selected, strict=True):
        python = {r["contact_id"] for r in staged if Evaluator(r, AS_OF).visit(node)}
        assert sql_members == python, tree
