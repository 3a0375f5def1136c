"""Property: the language's equivalence test extended with has: conditions.

Random trees mixing contact conditions (the language's own generator) and has: conditions
over orders, tickets and deals (random filters, windows, aggregates and comparisons). For
each hypothesis example, the batch's features are rendered and built in ONE dbt call and
every tree's SQL expression is evaluated in ONE query; the result must equal a Python
evaluator that aggregates the same activity rows itself (independent of the SQL).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from _activity import insert, project_copy
from _segments import compile_predicates, empty_raw_tables, insert_contacts
from _segments_eval import Evaluator, parse_node
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_segments_property import conditions as contact_conditions
from test_segments_property import contacts as contact_rows

from segmentation.compiler import features
from segmentation.language.activity import OBJECTS, Has
from segmentation.language.catalogue import Field
from segmentation.language.model import Condition
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = dt.date(2024, 3, 31)
TZ = "Asia/Jakarta"
DAYS = [0, 1, 29, 30, 31, 89, 90, 91, 365, 366, -1]  # days before AS_OF (-1: after it)


def local_noon(days_before: int, hour: int) -> str:
    day = AS_OF - dt.timedelta(days=days_before)
    return f"{day.isoformat()} {hour:02d}:30:00+07"


def activity_rows() -> dict[str, list[dict[str, Any]]]:
    """Random orders, tickets and deals of the 40 property contacts (and none for some)."""
    rng = random.Random(331)
    out: dict[str, list[dict[str, Any]]] = {"orders": [], "tickets": [], "deals": []}
    for i in range(40):
        contact = f"p{i:02d}"
        if i % 7 == 3:
            continue  # no activity at all
        for j in range(rng.randint(0, 4)):
            out["orders"].append(
                {
                    "order_id": f"o{i}_{j}",
                    "contact_id": contact,
                    "amount": rng.choice([None, 0, 100, 250, 1000, 5000]),
                    "status": rng.choice(["completed", "refunded", "cancelled"]),
                    "ordered_at": local_noon(rng.choice(DAYS), rng.choice([0, 12, 23])),
                }
            )
        for j in range(rng.randint(0, 3)):
            out["tickets"].append(
                {
                    "ticket_id": f"t{i}_{j}",
                    "contact_id": contact,
                    "status": rng.choice(["open", "closed"]),
                    "priority": rng.choice(["high", "low", None]),
                    "created_at": local_noon(rng.choice(DAYS), rng.choice([0, 12, 23])),
                }
            )
        for j in range(rng.randint(0, 2)):
            out["deals"].append(
                {
                    "deal_id": f"d{i}_{j}",
                    "contact_id": contact,
                    "status": rng.choice(["open", "won", "lost"]),
                    "amount": rng.choice([None, 10, 5000, 60000]),
                    "created_at": local_noon(rng.choice(DAYS), 12),
                    "closed_at": rng.choice([None, local_noon(rng.choice(DAYS), 12)]),
                }
            )
    return out


# --- strategies -------------------------------------------------------------------------------

DURATION = st.builds(lambda n: {"days": n}, st.sampled_from([0, 1, 30, 90, 365]))
FILTERS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "orders": st.one_of(
        st.builds(
            lambda op, v: {"field": "status", "op": op, "value": v},
            st.sampled_from(["eq", "neq"]),
            st.sampled_from(["completed", "refunded"]),
        ),
        st.builds(
            lambda op, v: {"field": "amount", "op": op, "value": v},
            st.sampled_from(["gt", "gte", "lt", "neq"]),
            st.sampled_from([0, 100, 1000]),
        ),
        st.builds(
            lambda op: {"field": "amount", "op": op}, st.sampled_from(["is_set", "is_not_set"])
        ),
        st.builds(
            lambda op, v: {"field": "ordered_at", "op": op, "value": v},
            st.sampled_from(["within_last", "more_than_ago"]),
            DURATION,
        ),
    ),
    "tickets": st.one_of(
        st.builds(
            lambda v: {"field": "status", "op": "in", "value": v},
            st.lists(st.sampled_from(["open", "closed"]), min_size=1, max_size=2),
        ),
        st.builds(
            lambda op, v: {"field": "priority", "op": op, "value": v},
            st.sampled_from(["eq", "neq", "not_in"]),
            st.sampled_from(["high", ["high"]]),
        ).filter(lambda c: isinstance(c["value"], list) == (c["op"] == "not_in")),
        st.builds(
            lambda v: {"field": "created_at", "op": "before", "value": v},
            st.sampled_from(["2024-03-01", "2024-03-31", "2023-04-01"]),
        ),
    ),
    "deals": st.one_of(
        st.builds(
            lambda v: {"field": "status", "op": "eq", "value": v},
            st.sampled_from(["open", "won"]),
        ),
        st.builds(
            lambda op: {"field": "closed_at", "op": op}, st.sampled_from(["is_set", "is_not_set"])
        ),
        st.builds(
            lambda v: {"field": "amount", "op": "between", "value": v},
            st.sampled_from([[0, 100], [10, 60000]]),
        ),
    ),
}
NUMBER_FIELDS = {"orders": "amount", "tickets": None, "deals": "amount"}
TIME_FIELDS = {"orders": "ordered_at", "tickets": "created_at", "deals": "created_at"}


def aggregates(obj: str) -> st.SearchStrategy[dict[str, Any]]:
    count = st.builds(
        lambda op, v: {"count": {op: v}},
        st.sampled_from(["eq", "neq", "gte", "lt"]),
        st.sampled_from([0, 1, 2, 3]),
    )
    options = [count]
    number = NUMBER_FIELDS[obj]
    if number:
        options.append(
            st.builds(
                lambda agg, op, v: {agg: {"field": number, op: v}},
                st.sampled_from(["sum", "avg", "min", "max"]),
                st.sampled_from(["gt", "gte", "lt", "lte"]),
                st.sampled_from([0, 100, 1000, 5000]),
            )
        )
        options.append(
            st.builds(
                lambda op, v: {"count_distinct": {"field": number, op: v}},
                st.sampled_from(["gte", "eq"]),
                st.sampled_from([1, 2]),
            )
        )
    options.append(
        st.builds(
            lambda agg, op, v: {agg: {"field": TIME_FIELDS[obj], "op": op, "value": v}},
            st.sampled_from(["min", "max"]),
            st.sampled_from(["within_last", "more_than_ago"]),
            DURATION,
        )
    )
    options.append(
        st.builds(
            lambda agg, op: {agg: {"field": TIME_FIELDS[obj], "op": op}},
            st.sampled_from(["min", "max"]),
            st.sampled_from(["is_set", "is_not_set"]),
        )
    )
    return st.one_of(options)


def has_conditions() -> st.SearchStrategy[dict[str, Any]]:
    def one(obj: str) -> st.SearchStrategy[dict[str, Any]]:
        where = st.one_of(
            st.none(),
            FILTERS[obj],
            st.builds(lambda xs: {"any": xs}, st.lists(FILTERS[obj], min_size=1, max_size=2)),
            st.builds(lambda x: {"not": x}, FILTERS[obj]),
        )
        within = st.one_of(
            st.none(),
            st.builds(lambda n: {"last_days": n}, st.sampled_from([1, 30, 90, 365])),
            st.just({"between": ["2024-01-01", "2024-03-31"]}),
        )
        agg = st.one_of(st.none(), aggregates(obj))

        def build(w: Any, win: Any, a: Any) -> dict[str, Any]:
            body: dict[str, Any] = {"object": obj}
            if w is not None:
                body["where"] = w
            if win is not None:
                body["within"] = win
            if a is not None:
                body.update(a)
            return {"has": body}

        return st.builds(build, where, within, agg)

    return st.one_of([one(o) for o in ("orders", "tickets", "deals")])


def trees() -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(has_conditions(), has_conditions(), contact_conditions())
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, children),
        ),
        max_leaves=5,
    )


# --- the independent evaluator ------------------------------------------------------------------


class ActivityEvaluator(Evaluator):
    """The language's evaluator plus has:, aggregating the contact's rows in Python."""

    def __init__(self, row: dict[str, Any], as_of: dt.date, activity: dict[str, list]) -> None:
        super().__init__(row, as_of)
        self.activity = activity

    def visit_has(self, node: Has) -> bool:
        f = node.feature
        assert f is not None
        obj = OBJECTS[f.object]
        rows = [r for r in self.activity[f.object] if r["contact_id"] == self.row["contact_id"]]
        kept = []
        for r in rows:
            day = r[obj.time_field]
            if day is not None and day > self.as_of:
                continue  # after the as-of date: never counts
            if f.window is not None:
                kind, value = f.window
                if day is None:
                    continue
                if kind == "last_days" and not (
                    self.as_of - dt.timedelta(days=value) <= day <= self.as_of
                ):
                    continue
                if kind == "between" and not (
                    dt.date.fromisoformat(value[0]) <= day <= dt.date.fromisoformat(value[1])
                ):
                    continue
            if node.where is not None and not Evaluator(r, self.as_of).visit(node.where):
                continue
            kept.append(r)
        values = [r[f.field] for r in kept if r[f.field] is not None] if f.field else []
        numbers = [Decimal(str(v)) for v in values if not isinstance(v, dt.date)]
        result: Any
        if f.aggregate == "count":
            result = Decimal(len(kept))
        elif f.aggregate == "count_distinct":
            result = Decimal(len(set(values)))
        elif f.aggregate == "sum":
            result = sum(numbers, Decimal(0))
        elif f.aggregate == "avg":
            result = sum(numbers, Decimal(0)) / len(numbers) if numbers else None
        elif f.aggregate == "min":
            result = min(values) if values else None
        else:
            result = max(values) if values else None
        field = Field("aggregate", "contact", "aggregate", f.result_type)
        compare = Condition(node.loc, field, node.op, node.value)
        return Evaluator({"aggregate": result}, self.as_of).visit_condition(compare)


# --- fixtures and the property ----------------------------------------------------------------


def local_dates(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    zone = ZoneInfo(TZ)
    out = []
    for row in rows:
        copy = dict(row)
        for c in columns:
            if copy.get(c) is not None:
                copy[c] = dt.datetime.fromisoformat(copy[c]).astimezone(zone).date()
        out.append(copy)
    return out


@pytest.fixture(scope="module")
def world(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[dict], dict[str, list]]]:
    with (
        project_copy(tmp_path_factory.mktemp("activity_property")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        empty_raw_tables(db)
        insert(db, "accounts", "account_id, name, package, timezone", [("acme", "Acme", "360", TZ)])
        insert_contacts(db, contact_rows())
        activity = activity_rows()
        for table, rows in activity.items():
            columns = list(rows[0])
            insert(
                db,
                table,
                "account_id, " + ", ".join(columns),
                [("acme", *(r[c] for c in columns)) for r in rows],
            )
        run_dbt(
            ["run", "--no-partial-parse", "--select", "staging int_segment_as_of"],
            {"as_of": AS_OF.isoformat()},
        )
        cur = db.execute(
            "select contact_id, city, full_name, loyalty_points, tags, consent_whatsapp, "
            "date_of_birth, created_at, custom_fields from segments_staging.stg_crm__contacts"
        )
        names = [c.name for c in cur.description]
        contacts = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        for row in contacts:
            if row["created_at"] is not None:
                row["created_at"] = row["created_at"].astimezone(ZoneInfo(TZ)).date()
        local = {
            "orders": local_dates(activity["orders"], ("ordered_at",)),
            "tickets": local_dates(activity["tickets"], ("created_at",)),
            "deals": local_dates(activity["deals"], ("created_at", "closed_at")),
        }
        yield project, contacts, local


@settings(
    max_examples=3,
    deadline=None,
    # Each example runs dbt: report the first failure rather than spend minutes shrinking.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(trees(), min_size=40, max_size=40))
def test_sql_agrees_with_python_with_has(
    world: tuple[Path, list[dict], dict[str, list]], db: psycopg.Connection, batch: list[dict]
) -> None:
    project, contacts, activity = world
    nodes = [parse_node(tree) for tree in batch]
    feats = features.collect_features(nodes)
    features.render_feature_models(project, feats)
    if feats:
        run_dbt(["run", "--no-partial-parse", "--select", "features"], {"as_of": AS_OF.isoformat()})
    predicates = compile_predicates([n.to_json() for n in nodes])
    joins = "".join(
        f" left join segments_audit.int_contact_features__{o} as feat_{o}"
        f" on feat_{o}.account_id = c.account_id and feat_{o}.contact_id = c.contact_id"
        for o in feats
    )
    columns = ", ".join(f"({p}) as p{i}" for i, p in enumerate(predicates))
    rows = db.execute(
        f"select c.contact_id, {columns} from segments_staging.stg_crm__contacts as c "
        "cross join (select %s::date as as_of_date, %s::text as timezone) as a" + joins,
        (AS_OF.isoformat(), TZ),
    ).fetchall()
    selected: list[set[str]] = [set() for _ in predicates]
    for row in rows:
        for i, flag in enumerate(row[1:]):
            assert flag is not None, f"predicate {i} returned NULL for {row[0]}"
            if flag:
                selected[i].add(row[0])
    assert any(0 < len(s) < len(contacts) for s in selected)
    for tree, node, sql_members in zip(batch, nodes, selected, strict=True):
        python = {
            r["contact_id"] for r in contacts if ActivityEvaluator(r, AS_OF, activity).visit(node)
        }
        assert sql_members == python, (
            f"{tree}: only SQL {sorted(sql_members - python)}, only Python "
            f"{sorted(python - sql_members)}"
        )
