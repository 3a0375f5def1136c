"""Bad ELT rows (issue 8: H3, M4, M6 data part, L4) on real PostgreSQL and real dbt.

Every raw value is untrusted. One dataset, built once for the module through staging,
features and segments:

- the class: for EVERY date, timestamp and numeric column of EVERY crm_raw table (read from
  information_schema, so a column added later without a check fails here), one row per
  implausible value (+/-infinity, 9999-01-01, year 1, NaN, +/-Infinity). Each is listed in
  int_crm__rejected_rows with its reason, column and outcome, and never reaches staging;
- the attacks end to end: a 9999-dated contact version that masked a WhatsApp withdrawal, a
  stale version that re-granted consent, a year-1 order that made a churn_risk member, NaN
  amounts that made big spenders, a date of birth 'infinity' that broke the build;
- an invalid account timezone: the fallback stays, but is visible and warned about.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from _activity import REPO, insert, project_copy
from _segments import empty_raw_tables, segment_yaml, write_def

from segmentation.errors import DbtError
from segmentation.steps import definitions as api
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 6, 30)
LOADED = "2026-07-01 00:00:00+00"  # every row's _loaded_at unless a case says otherwise
BEFORE = "2026-06-01 12:00:00+07"

# The latest-version order columns of each table (crm_table_spec in latest_per_key.sql): a
# bad value there skips the version; anywhere else it rejects the row (contacts: NULLs it).
ORDER_COLUMNS = {
    "users": {"_loaded_at"},
    "contacts": {"updated_at", "_loaded_at"},
    "companies": {"updated_at", "_loaded_at"},
    "contact_companies": {"_loaded_at"},
    "deals": {"updated_at", "_loaded_at"},
    "tickets": {"updated_at", "_loaded_at"},
    "conversations": {"last_message_at", "_loaded_at"},
    "campaigns": {"_loaded_at", "sent_at"},
    "campaign_events": {"_loaded_at", "occurred_at"},
    "orders": {"_loaded_at", "ordered_at"},
}
KEYS = {
    "users": "user_id",
    "contacts": "contact_id",
    "companies": "company_id",
    "deals": "deal_id",
    "tickets": "ticket_id",
    "conversations": "conversation_id",
    "campaigns": "campaign_id",
    "campaign_events": "event_id",
    "orders": "order_id",
}
# Not bounds-checked, on purpose (docs/raw-contract.md): any deleted_at means deleted (a
# check would revive the contact); accounts have one version per primary key.
EXEMPT = {("contacts", "deleted_at"), ("accounts", "_loaded_at")}
# An expected close date is a plan: only infinity and the lower bound apply.
NO_UPPER_BOUND = {("deals", "expected_close_date")}

TIME_VALUES = {
    "infinity": "infinite_date",
    "-infinity": "infinite_date",
    "9999-01-01": "future_date",
    "0001-01-01": "ancient_date",
}
NUMBER_VALUES = {"NaN": "non_finite_number", "Infinity": "non_finite_number"}
NUMBER_VALUES["-Infinity"] = "non_finite_number"


def checked_columns(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(table, column, data_type) of every date, timestamp and non-integer numeric column."""
    return [
        (t, c, d)
        for t, c, d in conn.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'crm_raw' and (data_type in ('date', 'numeric', 'real', "
            "'double precision') or data_type like 'timestamp%%') order by 1, 2"
        ).fetchall()
        if (t, c) not in EXEMPT
    ]


def base_row(table: str, record: str) -> dict[str, Any]:
    """A valid row of `table` for acme's live contact 'base', keyed by `record`."""
    common = {"account_id": "acme", "_loaded_at": LOADED}
    return {
        "users": {"user_id": record, "name": "U"},
        "contacts": {
            "contact_id": record,
            "full_name": "Case",
            "updated_at": BEFORE,
            "created_at": BEFORE,
            "consent_updated_at": BEFORE,
        },
        "companies": {"company_id": record, "name": "Co", "updated_at": BEFORE},
        "contact_companies": {"contact_id": "base", "company_id": record, "is_primary": False},
        "deals": {
            "deal_id": record,
            "contact_id": "base",
            "status": "open",
            "amount": 10,
            "updated_at": BEFORE,
        },
        "tickets": {"ticket_id": record, "contact_id": "base", "status": "open"},
        "conversations": {"conversation_id": record, "contact_id": "base", "channel": "sms"},
        "campaigns": {"campaign_id": record, "name": "C", "channel": "sms"},
        "campaign_events": {
            "event_id": record,
            "campaign_id": "cp",
            "contact_id": "base",
            "event_type": "sent",
        },
        "orders": {"order_id": record, "contact_id": "base", "status": "completed", "amount": 5},
    }[table] | common


def value_cases(conn: psycopg.Connection) -> list[tuple[str, str, str, str, str]]:
    """(table, column, value, record_id, expected reason) for every checked column."""
    cases = []
    for table, column, data_type in checked_columns(conn):
        values = (
            NUMBER_VALUES
            if data_type in ("numeric", "real", "double precision")
            else {
                v: r
                for v, r in TIME_VALUES.items()
                if not ((table, column) in NO_UPPER_BOUND and r == "future_date")
            }
        )
        for n, (value, reason) in enumerate(values.items()):
            cases.append((table, column, value, f"x_{column}_{n}", reason))
    return cases


def contact(contact_id: str, **values: Any) -> dict[str, Any]:
    """A live acme customer with a phone, WhatsApp consent and no activity."""
    return {
        "contact_id": contact_id,
        "account_id": "acme",
        "full_name": f"Contact {contact_id}",
        "phone": "+6281234567890",
        "lifecycle_stage": "customer",
        "consent_whatsapp": True,
        "consent_updated_at": BEFORE,
        "created_at": "2025-01-01 12:00:00+07",
        "updated_at": BEFORE,
        "_loaded_at": LOADED,
    } | values


# The attacks, as contact versions (oldest first as they would be loaded).
ATTACK_CONTACTS = [
    # H3: the real withdrawal (20 June) is masked by a version dated 9999-01-01.
    contact("masked", updated_at="2026-06-01 09:00+07", consent_updated_at="2026-06-01 09:00+07"),
    contact("masked", updated_at="9999-01-01 00:00+00"),
    contact(
        "masked",
        consent_whatsapp=False,
        updated_at="2026-06-20 09:00+07",
        consent_updated_at="2026-06-20 09:00+07",
    ),
    # A stale re-import wins on updated_at, but its consent is older than the withdrawal.
    contact(
        "stale",
        consent_whatsapp=False,
        updated_at="2026-06-10 09:00+07",
        consent_updated_at="2026-06-10 09:00+07",
    ),
    contact("stale", updated_at="2026-06-25 09:00+07", consent_updated_at="2026-05-01 09:00+07"),
    # A grant dated beyond the bound is no grant.
    contact("future_grant", consent_updated_at="9999-01-01 00:00+00"),
    # A withdrawal dated beyond the bound can never be outranked.
    contact(
        "future_withdrawal",
        consent_whatsapp=False,
        updated_at="2026-06-01 09:00+07",
        consent_updated_at="infinity",
    ),
    contact(
        "future_withdrawal",
        updated_at="2026-06-25 09:00+07",
        consent_updated_at="2026-06-24 09:00+07",
    ),
    # Legitimate: withdrawn, then granted again later. Consent must come back.
    contact(
        "regranted",
        consent_whatsapp=False,
        updated_at="2026-06-01 09:00+07",
        consent_updated_at="2026-06-01 09:00+07",
    ),
    contact(
        "regranted", updated_at="2026-06-20 09:00+07", consent_updated_at="2026-06-20 09:00+07"
    ),
    # Within the skew (12 h after its load): plausible, it wins.
    contact("skewed", full_name="Early", updated_at="2026-06-01 09:00+07"),
    contact("skewed", full_name="Late", updated_at="2026-07-01 12:00+00"),
    # M6: a birthday segment over 'infinity' broke the build for every account.
    contact("dob_inf", date_of_birth="infinity"),
    contact("dob_ok", date_of_birth="1990-07-03"),
    # H3 lower bound and M4: one bad order each.
    contact("churn_year1"),
    contact("churn_real"),
    contact("nan_buyer"),
    contact("inf_buyer"),
    contact("real_buyer"),
    # A deleted_at beyond the bound still deletes.
    contact("deleted_future", deleted_at="9999-01-01 00:00+00"),
    contact("base"),
]
ATTACK_ORDERS = [
    ("o_year1", "churn_year1", 100, "0001-01-01 00:00+00"),
    ("o_real", "churn_real", 100, "2026-01-10 12:00+07"),
    ("o_nan", "nan_buyer", "NaN", "2026-06-10 12:00+07"),
    ("o_inf", "inf_buyer", "Infinity", "2026-06-10 12:00+07"),
    ("o_big", "real_buyer", 2_000_000, "2026-06-10 12:00+07"),
]


def insert_rows(conn: psycopg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        insert(conn, table, ", ".join(row), [tuple(row.values())])


def load(conn: psycopg.Connection) -> None:
    empty_raw_tables(conn)
    insert(
        conn,
        "accounts",
        "account_id, name, package, timezone",
        [("acme", "Acme", "ultimate", "Asia/Jakarta"), ("zed", "Zed", "ultimate", "Mars/Base")],
    )
    insert_rows(conn, "contacts", ATTACK_CONTACTS)
    insert(
        conn,
        "orders",
        "order_id, account_id, contact_id, amount, status, ordered_at, _loaded_at",
        [(o, "acme", c, a, "completed", at, LOADED) for o, c, a, at in ATTACK_ORDERS],
    )
    for table, column, value, record, _ in value_cases(conn):
        row = base_row(table, record)
        row[column] = value
        insert_rows(conn, table, [row])


BIG_SPENDERS = """
has:
  object: orders
  sum: {field: amount, op: gte, value: 1000000}
"""
BIRTHDAY = "{field: date_of_birth, op: anniversary_within_next, value: {days: 7}}"


@pytest.fixture(scope="module")
def built(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[psycopg.Connection, Any]]:
    with (
        project_copy(tmp_path_factory.mktemp("security_staging")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        (project / "segment_defs" / "_all").mkdir()
        for name in ("churn_risk.yml", "whatsapp_reachable.yml"):
            shutil.copy(REPO / "segment_defs" / "_all" / name, project / "segment_defs" / "_all")
        write_def(
            project, "acme", "big_spenders", segment_yaml("acme", "big_spenders", BIG_SPENDERS)
        )
        write_def(project, "acme", "birthday_soon", segment_yaml("acme", "birthday_soon", BIRTHDAY))
        load(db)
        api.compile_definitions()
        result = run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                "staging intermediate marts features segments",
            ],
            {"as_of": AS_OF.isoformat()},
        )
        yield db, result


@pytest.fixture
def db(built: tuple[psycopg.Connection, Any]) -> psycopg.Connection:
    return built[0]


def members(db: psycopg.Connection, segment: str) -> set[str]:
    rows = db.execute(
        "select contact_id from segments_audit.segment_memberships "
        "where account_id = 'acme' and segment_key = %s",
        (segment,),
    ).fetchall()
    return {r for (r,) in rows}


def staged_contact(db: psycopg.Connection, contact_id: str, columns: str) -> tuple[Any, ...]:
    row = db.execute(
        f"select {columns} from segments_staging.stg_crm__contacts "  # columns: test constants
        "where account_id = 'acme' and contact_id = %s",
        (contact_id,),
    ).fetchone()
    assert row is not None, contact_id
    return tuple(row)


def rejections(db: psycopg.Connection, table: str, record: str) -> set[tuple[str, str, str]]:
    rows = db.execute(
        "select reason, column_name, outcome from segments_audit.int_crm__rejected_rows "
        "where source_table = %s and record_id = %s",
        (table, record),
    ).fetchall()
    return {tuple(r) for r in rows}


def test_a_future_dated_version_does_not_mask_a_consent_withdrawal(db: psycopg.Connection) -> None:
    assert staged_contact(db, "masked", "consent_whatsapp, updated_at") == (
        False,
        dt.datetime(2026, 6, 20, 2, tzinfo=dt.UTC),
    )
    assert "masked" not in members(db, "whatsapp_reachable")
    assert rejections(db, "contacts", "masked") == {
        ("future_date", "updated_at", "version_skipped")
    }


def test_the_latest_consent_timestamp_wins_whatever_updated_at_says(db: psycopg.Connection) -> None:
    assert staged_contact(db, "stale", "consent_whatsapp") == (False,)
    assert staged_contact(db, "future_grant", "consent_whatsapp, consent_updated_at") == (
        False,
        None,
    )
    assert staged_contact(db, "future_withdrawal", "consent_whatsapp") == (False,)
    assert rejections(db, "contacts", "future_grant") == {
        ("future_date", "consent_updated_at", "nulled")
    }
    # ...and a real re-grant after a withdrawal is honoured.
    assert staged_contact(db, "regranted", "consent_whatsapp") == (True,)
    reachable = members(db, "whatsapp_reachable")
    assert {"stale", "future_grant", "future_withdrawal"}.isdisjoint(reachable)
    assert {"regranted", "base"} <= reachable


def test_a_version_within_the_skew_is_plausible(db: psycopg.Connection) -> None:
    assert staged_contact(db, "skewed", "full_name") == ("Late",)
    assert rejections(db, "contacts", "skewed") == set()


def test_a_year_one_order_makes_no_churn_risk_member(db: psycopg.Connection) -> None:
    churn = members(db, "churn_risk")
    assert "churn_real" in churn  # the segment works: a real order 171 days ago
    assert "churn_year1" not in churn
    assert rejections(db, "orders", "o_year1") == {
        ("ancient_date", "ordered_at", "version_skipped")
    }


def test_nan_and_infinite_amounts_make_no_member(db: psycopg.Connection) -> None:
    assert members(db, "big_spenders") == {"real_buyer"}
    for order in ("o_nan", "o_inf"):
        assert rejections(db, "orders", order) == {("non_finite_number", "amount", "dropped")}


def test_an_infinite_date_of_birth_neither_breaks_the_build_nor_matches(
    db: psycopg.Connection,
) -> None:
    assert staged_contact(db, "dob_inf", "date_of_birth") == (None,)
    assert members(db, "birthday_soon") == {"dob_ok"}
    assert rejections(db, "contacts", "dob_inf") == {("infinite_date", "date_of_birth", "nulled")}


def test_a_far_future_deleted_at_still_deletes(db: psycopg.Connection) -> None:
    found = db.execute(
        "select count(*) from segments_staging.stg_crm__contacts "
        "where contact_id = 'deleted_future'"
    ).fetchone()
    assert found == (0,)


def test_every_implausible_value_is_rejected_with_its_reason(db: psycopg.Connection) -> None:
    """The class: every date/timestamp/numeric column of every table, every bad value."""
    cases = value_cases(db)
    assert len({(t, c) for t, c, *_ in cases}) >= 30  # the whole raw contract, not a sample
    failures = []
    for table, column, value, record, reason in cases:
        if column in ORDER_COLUMNS[table]:
            outcome = "version_skipped"
        else:
            outcome = "nulled" if table == "contacts" else "dropped"
        record_id = f"base/{record}" if table == "contact_companies" else record
        found = rejections(db, table, record_id)
        want = (reason, column, outcome)
        if found != {want}:
            failures.append(f"{table}.{column} = {value}: {found}, want {want}")
        if table == "contact_companies":
            staged = db.execute(
                "select count(*) from segments_staging.stg_crm__contact_companies "
                "where company_id = %s",
                (record,),
            ).fetchone()
        else:
            staged = db.execute(
                psycopg.sql.SQL("select count(*) from segments_staging.{} where {} = %s").format(
                    psycopg.sql.Identifier(f"stg_crm__{table}"), psycopg.sql.Identifier(KEYS[table])
                ),
                (record,),
            ).fetchone()
        if staged != ((1,) if outcome == "nulled" else (0,)):
            failures.append(f"{table}.{column} = {value}: staged {staged}")
        if outcome == "nulled":
            kept = db.execute(
                psycopg.sql.SQL(
                    "select {} is null from segments_staging.stg_crm__contacts "
                    "where contact_id = %s"
                ).format(psycopg.sql.Identifier(column)),
                (record,),
            ).fetchone()
            if kept != (True,):
                failures.append(f"{table}.{column} = {value}: value kept in staging")
    assert not failures, "\n".join(failures)


def test_no_implausible_value_reaches_staging(db: psycopg.Connection) -> None:
    for table, column, data_type in checked_columns(db):
        model = f"stg_crm__{table}"
        names = {
            r
            for (r,) in db.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'segments_staging' and table_name = %s",
                (model,),
            ).fetchall()
        }
        if column not in names:
            continue
        bad = (
            "{c} in ('NaN', 'Infinity', '-Infinity')"
            if data_type in ("numeric", "real", "double precision")
            else "not isfinite({c}) or {c} < date '1900-01-01'"
            + ("" if (table, column) in NO_UPPER_BOUND else " or {c} > date '2027-01-01'")
        )
        query = psycopg.sql.SQL("select count(*) from segments_staging.{} where " + bad).format(
            psycopg.sql.Identifier(model), c=psycopg.sql.Identifier(column)
        )
        assert db.execute(query).fetchone() == (0,), f"{model}.{column}"


def test_each_new_reason_warns_in_dbt_output(built: tuple[psycopg.Connection, Any]) -> None:
    db, result = built
    warned = {r.node.name: r.failures for r in result.result.results if str(r.status) == "warn"}
    counts = dict(
        db.execute(
            "select reason, count(*) from segments_audit.int_crm__rejected_rows group by reason"
        ).fetchall()
    )
    for reason in ("infinite_date", "future_date", "ancient_date", "non_finite_number"):
        assert counts[reason] > 0, reason
        assert warned[f"rejected_rows_{reason}"] == counts[reason]


def test_an_invalid_timezone_falls_back_loudly(built: tuple[psycopg.Connection, Any]) -> None:
    db, result = built
    assert db.execute(
        "select timezone, timezone_is_valid, timezone_raw from segments_staging.stg_crm__accounts "
        "where account_id = 'zed'"
    ).fetchone() == ("Asia/Jakarta", False, "Mars/Base")
    assert db.execute(
        "select timezone_is_valid from segments_staging.stg_crm__accounts where account_id = 'acme'"
    ).fetchone() == (True,)
    assert rejections(db, "accounts", "zed") == {("invalid_timezone", "timezone", "defaulted")}
    warned = {r.node.name: r.failures for r in result.result.results if str(r.status) == "warn"}
    assert warned["rejected_rows_invalid_timezone"] == 1
    assert warned["stg_crm__accounts_timezone_is_valid"] == 1


def test_segments_status_shows_the_timezone_fallback(
    built: tuple[psycopg.Connection, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from segmentation.cli import main as cli

    assert cli.main(["status"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "Asia/Jakarta (!)" in rows["zed"]
    assert "(!)" not in rows["acme"]
    assert "run lease: free" in out
    assert "account zed: timezone 'Mars/Base' is unknown" in err
    assert "account acme" not in err


def test_a_future_load_time_does_not_make_a_stale_source_look_fresh(
    built: tuple[psycopg.Connection, Any],
) -> None:
    """Runs last: adds a raw row after the build. Every order here was loaded on 1 July 2026
    (stale); one more row claiming to be loaded in 9999 must not hide that."""
    db, _ = built
    db.execute(
        "insert into crm_raw.orders (order_id, account_id, contact_id, _loaded_at) "
        "values ('o_fresh_forever', 'acme', 'base', '9999-01-01')"
    )
    try:
        with pytest.raises(DbtError, match=r"source\.segmentation\.crm\.orders"):
            run_dbt(["source", "freshness", "--select", "source:crm.orders"])
    finally:
        db.execute("delete from crm_raw.orders where order_id = 'o_fresh_forever'")
