"""RFM on real Postgres: rfm_scores against an independent pandas computation of recency,
frequency, monetary, the quintile scores (ntile with contact_id breaking ties) and the
segment map, row by row; the rfm.* and cluster.* fields in segment models; the shipped
RFM template group and an account's own group replacing it. Validation:
tests/unit/test_rfm_fields.py."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest
from _activity import insert, project_copy, write, write_group
from _segments import empty_raw_tables

from segmentation.compiler import activity_compile, render
from segmentation.compiler.sources import load_definitions
from segmentation.language.rfm import RFM_SEGMENTS
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 6, 30)
WINDOW_DAYS = 365
ACCOUNTS = {"acme": "Asia/Jakarta", "beta": "UTC"}

# The documented map (docs/analytics.md, "## RFM"), written out independently of the model:
# rows are r_score 5..1, columns fm_score 1..5.
GRID = {
    5: ["new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    4: ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    3: ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"],
    1: ["lost", "hibernating", "at_risk", "at_risk", "cannot_lose"],
}


def _ts(day: dt.date, hour: int, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZoneInfo(tz))


def fixture_rows() -> tuple[list[tuple], list[tuple]]:
    """Contacts and orders with the cases that matter: ties on every measure, ids whose
    byte order differs from a linguistic one ('B07' < 'a01'), buyers outside the window
    only, non-completed and NULL-amount orders, orders after the as-of date (also one that
    is after it only in the account's timezone), the window's edges, contacts without
    orders and contacts created after the as-of date."""
    rng = random.Random(13)
    contacts: list[tuple] = []
    orders: list[tuple] = []
    n = 0

    def order(account: str, contact: str, day: dt.date, amount: object, status: str) -> None:
        nonlocal n
        n += 1
        hour = rng.choice([1, 9, 15, 22])
        orders.append((f"o{n}", account, contact, amount, "IDR", status, _ts(day, hour, "UTC")))

    for account, size in (("acme", 58), ("beta", 13)):
        tz = ACCOUNTS[account]
        for i in range(size):
            prefix = rng.choice(["a", "B", "c"]) if account == "acme" else "b"
            contact = f"{prefix}{i:02d}"
            created = _ts(dt.date(2024, 1, 1), 12, tz)
            if i % 17 == 16:
                created = _ts(AS_OF + dt.timedelta(days=2), 12, tz)  # not there yet
            contacts.append((contact, account, contact.upper(), "customer", created))
            if i % 7 == 0:
                continue  # no orders at all
            for _ in range(rng.choice([1, 1, 2, 3, 5])):
                # few distinct days and amounts: ties on every measure
                ago = rng.choice([0, 3, 3, 40, 40, 200, 365, 366, 500])
                amount = rng.choice([Decimal("100"), Decimal("250.50"), Decimal("100"), None])
                status = rng.choice(["completed"] * 5 + ["refunded", "cancelled"])
                order(account, contact, AS_OF - dt.timedelta(days=ago), amount, status)
            if i % 5 == 0:
                order(account, contact, AS_OF + dt.timedelta(days=3), Decimal("999"), "completed")
    # 2026-06-30 20:00 UTC is 2026-07-01 in Jakarta: after acme's as-of date
    orders.append(
        ("late", "acme", "a03", Decimal("5000"), "IDR", "completed", _ts(AS_OF, 20, "UTC"))
    )
    contacts.append(("a03", "acme", "A03", "customer", _ts(dt.date(2024, 1, 1), 12, "UTC")))
    # ids must be unique per account: the random prefixes can collide with a03
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in contacts:
        if (row[1], row[0]) not in seen:
            seen.add((row[1], row[0]))
            unique.append(row)
    return unique, orders


def ntile(n: int, buckets: int = 5) -> list[int]:
    """PostgreSQL's ntile(buckets) for rows 0..n-1: the first n % buckets groups get one
    row more."""
    size, extra = divmod(n, buckets)
    out = []
    for i in range(n):
        big = extra * (size + 1)
        out.append(i // (size + 1) + 1 if i < big else extra + (i - big) // size + 1)
    return out


def oracle(contacts: list[tuple], orders: list[tuple]) -> pd.DataFrame:
    c = pd.DataFrame(contacts, columns=["contact_id", "account_id", "name", "stage", "created"])
    c["tz"] = c["account_id"].map(ACCOUNTS)
    c["created_local"] = [
        ts.astimezone(ZoneInfo(tz)).date() for ts, tz in zip(c.created, c.tz, strict=False)
    ]
    c = c[c.created_local <= AS_OF]
    o = pd.DataFrame(
        orders, columns=["order_id", "account_id", "contact_id", "amount", "cur", "status", "at"]
    )
    o = o[o.status == "completed"].copy()
    o["day"] = [
        ts.astimezone(ZoneInfo(ACCOUNTS[a])).date()
        for ts, a in zip(o["at"], o.account_id, strict=False)
    ]
    o = o[o.day <= AS_OF]
    o = o.merge(c[["account_id", "contact_id"]], on=["account_id", "contact_id"])
    o["in_window"] = o.day >= AS_OF - dt.timedelta(days=WINDOW_DAYS)
    o["amount_in_window"] = [
        a if w and a is not None else Decimal(0)
        for a, w in zip(o.amount, o.in_window, strict=False)
    ]
    buyers = (
        o.groupby(["account_id", "contact_id"])
        .agg(
            last=("day", "max"),
            frequency=("in_window", "sum"),
            monetary=("amount_in_window", lambda s: sum(s, Decimal(0))),
        )
        .reset_index()
    )
    buyers["recency_days"] = [(AS_OF - d).days for d in buyers["last"]]
    parts = []
    for _, group in buyers.groupby("account_id"):
        group = group.copy()
        for score, column, descending in (
            ("r_score", "recency_days", True),
            ("f_score", "frequency", False),
            ("m_score", "monetary", False),
        ):
            # contact_id ascending in code-point order breaks ties
            ordered = sorted(
                group.itertuples(),
                key=lambda r, col=column, desc=descending: (
                    -getattr(r, col) if desc else getattr(r, col),
                    r.contact_id,
                ),
            )
            ranks = dict(zip([r.contact_id for r in ordered], ntile(len(ordered)), strict=True))
            group[score] = group.contact_id.map(ranks)
        parts.append(group)
    scored = pd.concat(parts)
    scored["rfm_segment"] = [
        GRID[r][(f + m + 1) // 2 - 1]
        for r, f, m in zip(scored.r_score, scored.f_score, scored.m_score, strict=False)
    ]
    out = c[["account_id", "contact_id"]].merge(scored, how="left", on=["account_id", "contact_id"])
    none = out.r_score.isna()
    out.loc[none, ["r_score", "f_score", "m_score"]] = 1
    out.loc[none, "frequency"] = 0
    out.loc[none, "monetary"] = Decimal(0)
    out.loc[none, "rfm_segment"] = "no_orders"
    out["recency_days"] = [None if pd.isna(v) else int(v) for v in out.recency_days]
    return out


@pytest.fixture(scope="module")
def built(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    contacts, orders = fixture_rows()
    with (
        project_copy(tmp_path_factory.mktemp("rfm_project")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        empty_raw_tables(db)
        insert(
            db,
            "accounts",
            "account_id, name, package, timezone",
            [("acme", "Acme", "plus", ACCOUNTS["acme"]), ("beta", "Beta", "plus", "UTC")],
        )
        insert(
            db,
            "contacts",
            "contact_id, account_id, full_name, lifecycle_stage, created_at",
            contacts,
        )
        insert(
            db,
            "orders",
            "order_id, account_id, contact_id, amount, currency, status, ordered_at",
            orders,
        )
        # cluster rows: today's for a few acme contacts, yesterday's must not count
        acme = sorted(c[0] for c in contacts if c[1] == "acme")
        db.execute(
            "insert into segments_marts.contact_clusters "
            "(account_id, contact_id, as_of, cluster_id, cluster_label) values "
            "('acme', %s, %s, 2, 'high value, recent, retail'), "
            "('acme', %s, %s, 2, 'high value, recent, retail'), "
            "('acme', %s, %s, 1, 'low value, lapsed'), "
            "('acme', %s, %s, 2, 'high value, recent, retail'), "
            "('beta', %s, %s, 2, 'retail')",
            (
                acme[0],
                AS_OF,
                acme[1],
                AS_OF,
                acme[2],
                AS_OF,
                acme[3],
                AS_OF - dt.timedelta(days=1),
                "b01",
                AS_OF,
            ),
        )
        defs = project / "segment_defs"
        shutil.rmtree(defs)
        (defs / "_all" / "_groups").mkdir(parents=True)
        source = Path(__file__).resolve().parents[2] / "segment_defs" / "_all"
        for path in source.glob("rfm_*.yml"):
            shutil.copy(path, defs / "_all" / path.name)
        shutil.copy(source / "_groups" / "rfm.yml", defs / "_all" / "_groups" / "rfm.yml")
        write(defs, "acme", "cluster_two", "{field: cluster.id, op: eq, value: 2}")
        write(
            defs, "acme", "retail_cluster", "{field: cluster.label, op: icontains, value: RETAIL}"
        )
        write(defs, "acme", "unclustered", "{field: cluster.id, op: is_not_set}")
        write(
            defs,
            "*",
            "recent_big",
            "all:\n  - {field: rfm.r_score, op: gte, value: 4}\n"
            "  - {field: rfm.monetary, op: gt, value: 200}\n"
            "  - {field: rfm.recency_days, op: lte, value: 40}",
        )
        write(defs, "*", "never_bought", "{field: rfm.recency_days, op: is_not_set}")
        # beta's own group replaces the template group of the same key
        write_group(defs, "beta", "rfm", "group: rfm\norder: [rfm_champions]\nfallback: rest\n")
        definitions = load_definitions([defs], None)
        assert not definitions.issues, definitions.errors
        plan = activity_compile.plan(definitions.segments, defs, None)
        assert not plan.issues, plan.issues.sorted()
        render.render(definitions, project, plan)
        run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                "staging intermediate marts features segments path:models/analytics/rfm",
            ],
            {"as_of": AS_OF.isoformat()},
        )
        yield {"db": db, "contacts": contacts, "orders": orders, "acme": acme}


def _members(db: psycopg.Connection, account: str, key: str) -> set[str]:
    rows = db.execute(
        "select contact_id from segments_audit.segment_memberships "
        "where account_id = %s and segment_key = %s",
        (account, key),
    ).fetchall()
    return {r[0] for r in rows}


def _scores(db: psycopg.Connection) -> pd.DataFrame:
    cur = db.execute("select * from segments_marts.rfm_scores")
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def test_rfm_scores_match_the_pandas_oracle_row_by_row(built: dict) -> None:
    want = oracle(built["contacts"], built["orders"]).set_index(["account_id", "contact_id"])
    got = _scores(built["db"]).set_index(["account_id", "contact_id"])
    assert sorted(got.index) == sorted(want.index)
    assert (got.as_of == AS_OF).all()
    columns = [
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "rfm_segment",
    ]
    mismatches = []
    for key in want.index:
        w = [want.at[key, c] for c in columns]
        g = [got.at[key, c] for c in columns]
        w = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in w]
        g = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in g]
        w = [int(v) if isinstance(v, float) else v for v in w]
        g = [int(v) if isinstance(v, float) else v for v in g]
        if [str(v) if isinstance(v, Decimal) else v for v in w] != [
            str(v) if isinstance(v, Decimal) else v for v in g
        ]:
            mismatches.append((key, w, g))
    assert mismatches == []
    # the fixture exercises what it claims to
    assert {"no_orders"} < set(got.rfm_segment)
    assert len(set(got.rfm_segment)) >= 6
    assert (got.frequency == 0).sum() > (got.rfm_segment == "no_orders").sum()  # old buyers
    assert len(got.loc["beta"]) == len(want.loc["beta"])


def test_monetary_decimals_are_exact(built: dict) -> None:
    got = _scores(built["db"])
    assert all(isinstance(v, Decimal) for v in got.monetary)


def test_the_segment_map_and_the_language_agree(built: dict) -> None:
    rows = (
        built["db"]
        .execute("select r_score, fm_score, rfm_segment from segments_marts.rfm_segment_map")
        .fetchall()
    )
    assert {(r, fm): s for r, fm, s in rows} == {
        (r, fm): GRID[r][fm - 1] for r in range(1, 6) for fm in range(1, 6)
    }
    assert {s for _, _, s in rows} | {"no_orders"} == set(RFM_SEGMENTS)


def test_rfm_fields_in_segments_read_the_scores(built: dict) -> None:
    db = built["db"]
    want = oracle(built["contacts"], built["orders"])
    for account in ACCOUNTS:
        rows = want[want.account_id == account]
        recent_big = rows[
            (rows.r_score >= 4)
            & rows.monetary.map(lambda v: v > 200)
            & rows.recency_days.map(lambda v: v is not None and v <= 40)
        ]
        assert _members(db, account, "recent_big") == set(recent_big.contact_id), account
        never = rows[rows.rfm_segment == "no_orders"]
        assert _members(db, account, "never_bought") == set(never.contact_id), account
        for name in RFM_SEGMENTS:
            chosen = set(rows[rows.rfm_segment == name].contact_id)
            assert _members(db, account, f"rfm_{name}") == chosen, (account, name)
    assert _members(db, "acme", "recent_big")


def test_cluster_fields_read_the_row_of_the_as_of_date(built: dict) -> None:
    db, acme = built["db"], built["acme"]
    # acme[3]'s cluster row is yesterday's: it does not count today
    assert _members(db, "acme", "cluster_two") == {acme[0], acme[1]}
    assert _members(db, "acme", "retail_cluster") == {acme[0], acme[1]}
    existing = set(
        oracle(built["contacts"], built["orders"]).query("account_id == 'acme'").contact_id
    )
    assert _members(db, "acme", "unclustered") == existing - {acme[0], acme[1], acme[2]}


def test_the_rfm_template_group_assigns_every_contact_once(built: dict) -> None:
    db = built["db"]
    want = oracle(built["contacts"], built["orders"])
    acme = want[want.account_id == "acme"]
    rows = db.execute(
        "select contact_id, segment_key, is_fallback from segments_audit.segment_group_assignments "
        "where account_id = 'acme' and group_key = 'rfm'"
    ).fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(acme)  # exclusive and exhaustive
    assert not any(fallback for _, _, fallback in rows)
    assert {c: s for c, s, _ in rows} == {
        c: f"rfm_{s}" for c, s in zip(acme.contact_id, acme.rfm_segment, strict=True)
    }
    catalogue = db.execute(
        "select account_id, segment_keys, fallback from segments_audit.int_group_catalogue "
        "where group_key = 'rfm' order by account_id"
    ).fetchall()
    assert catalogue == [
        ("acme", [f"rfm_{s}" for s in RFM_SEGMENTS], "rfm_unscored"),
        ("beta", ["rfm_champions"], "rest"),  # beta's own group replaces the template
    ]
    beta = db.execute(
        "select count(*) filter (where is_fallback), count(*) filter (where not is_fallback) "
        "from segments_audit.segment_group_assignments where account_id = 'beta' "
        "and group_key = 'rfm'"
    ).fetchone()
    champions = (want[(want.account_id == "beta")].rfm_segment == "champions").sum()
    assert beta == (len(want[want.account_id == "beta"]) - champions, champions)
