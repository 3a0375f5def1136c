"""The run's scope on real dbt and PostgreSQL (CONTRACT "Run scope", issue 11): the accounts a
run refreshes (dbt vars accounts / excluded_accounts), each account's as-of date from the
schedule at a fixed clock, and a failure contained to its account: a bad definition file,
or a model that fails at build time, leaves the other accounts built.

Demo data with two accounts: acme (Asia/Jakarta) and globex (Asia/Makassar)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _activity import project_copy
from _definitions import write

from segmentation.errors import DbtError
from segmentation.steps import pipeline, schedule
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 20)

DEFINITION = """\
key: {key}
name: {key}
account: "{account}"
owner: tests
visibility: team
where: {{field: email, op: is_set}}
"""


@pytest.fixture(scope="module")
def project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    demo_data.load(accounts=2, contacts=300, seed=5, anchor=AS_OF)
    with project_copy(tmp_path_factory.mktemp("run_scope") / "project") as root:
        write(root, "_all/reachable.yml", DEFINITION.format(key="reachable", account="*"))
        for account in ("acme", "globex"):
            write(root, f"{account}/own.yml", DEFINITION.format(key="own", account=account))
        yield root


def _rows(db: psycopg.Connection, relation: str, columns: str = "account_id") -> set[tuple]:
    return set(db.execute(f"select distinct {columns} from segments_audit.{relation}").fetchall())


def _members(db: psycopg.Connection) -> set[tuple[str, str]]:
    return _rows(db, "segment_memberships", "account_id, segment_key")


def test_the_schedule_refreshes_each_account_for_its_own_0800(
    project: Path, db: psycopg.Connection
) -> None:
    """A fixed clock over the warehouse's accounts: 00:00 UTC is 08:00 in Makassar (globex),
    01:00 UTC is 08:00 in Jakarta (acme); each build holds only the due account, for the
    date it is there."""
    assert schedule.account_timezones() == {"acme": "Asia/Jakarta", "globex": "Asia/Makassar"}
    at = dt.datetime(2026, 11, 20, 0, tzinfo=dt.UTC)
    for moment, account in ((at, "globex"), (at + dt.timedelta(hours=1), "acme")):
        as_of, accounts = schedule.scope(moment)
        assert (as_of, accounts) == (AS_OF, [account])
        assert pipeline.build(as_of, None, accounts) == {}
        assert _rows(db, "int_segment_as_of", "account_id, as_of_date") == {(account, AS_OF)}
        assert _members(db) == {(account, "own"), (account, "reachable")}
        assert _rows(db, "segment_catalogue") == {(account,)}
    # 02:00 UTC: nobody's 08:00.
    assert schedule.scope(at + dt.timedelta(hours=2)) == (None, [])


def test_every_account_without_a_scope(project: Path, db: psycopg.Connection) -> None:
    assert pipeline.build(AS_OF) == {}
    assert _rows(db, "int_segment_as_of") == {("acme",), ("globex",)}
    assert {a for a, _ in _members(db)} == {"acme", "globex"}


def test_a_bad_definition_fails_only_its_account(project: Path, db: psycopg.Connection) -> None:
    broken = write(project, "globex/broken.yml", "key: broken\nname: [unclosed\n")
    try:
        pipeline.check_sources()  # the run's one compile
        failed = pipeline.failed_definitions(pipeline.validate())
        assert list(failed) == ["globex"]
        assert "segment_defs/globex/broken.yml:" in failed["globex"]
        assert pipeline.build(AS_OF, None, None, failed) == failed
        # acme builds in full (its own segment and the template); nothing of globex.
        assert _members(db) == {("acme", "own"), ("acme", "reachable")}
        assert _rows(db, "segment_catalogue") == {("acme",)}
        assert _rows(db, "int_segment_as_of") == {("acme",)}
    finally:
        broken.unlink()


def _block(db: psycopg.Connection, name: str) -> None:
    """Put a sequence where dbt will create the model `name` (a table or a view today)."""
    row = db.execute(
        "select c.relkind from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
        " where n.nspname = 'segments_audit' and c.relname = %s",
        (name,),
    ).fetchone()
    if row is not None:
        kind = "view" if row[0] == "v" else "table"
        db.execute(f"drop {kind} segments_audit.{name} cascade")
    db.execute(f"create sequence segments_audit.{name}")


@pytest.mark.parametrize("model", ["seg__globex__own", "seg_pass__globex"])
def test_a_model_failing_at_build_time_fails_only_its_account(
    project: Path, db: psycopg.Connection, model: str
) -> None:
    """A sequence with the model's name: PostgreSQL refuses to create globex's model (a
    real build-time failure of one account's model: its segment's view, or the one pass
    that evaluates its own segments)."""
    pipeline.check_sources()
    _block(db, model)
    try:
        failed = pipeline.build(AS_OF)
        assert list(failed) == ["globex"]
        assert model in failed["globex"]
        assert "already exists" in failed["globex"]
        assert _members(db) == {("acme", "own"), ("acme", "reachable")}
        assert _rows(db, "segment_catalogue") == {("acme",)}
    finally:
        db.execute(f"drop sequence segments_audit.{model}")


def test_a_failing_template_model_fails_the_build(project: Path, db: psycopg.Connection) -> None:
    """The templates' pass serves every account: no single account owns its failure."""
    pipeline.check_sources()
    db.execute("drop table if exists segments_audit.seg_pass__all cascade")
    db.execute("create sequence segments_audit.seg_pass__all")
    try:
        with pytest.raises(DbtError, match="seg_pass__all"):
            pipeline.build(AS_OF)
    finally:
        db.execute("drop sequence segments_audit.seg_pass__all")
