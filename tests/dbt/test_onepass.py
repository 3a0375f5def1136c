"""One pass and per segment give identical membership: the 200 generated bench definitions
(every has: object and aggregate, windows, nesting, exclude, in_segment), the shipped ones
and account definitions that refer to templates and override a referenced template, built
both ways (dbt var segment_strategy) on the same demo data."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _segments import BUILD_SELECT, PROJECT_DIR, copy_project, members, project_dir
from psycopg import sql

from segmentation.steps import definitions
from segmentation.warehouse.dbt_runner import run_dbt
from segmentation_dev import bench_defs, demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 22)

OWN = {
    # an account's own segment referring to templates (read from the template pass)
    "globex/bench_own_refs": """
        where:
          all:
            - in_segment: bench_001
            - not: {in_segment: bench_017}
            - {field: phone, op: is_set}
        """,
    # and to its own segment, which refers to a template in turn (two layers)
    "globex/bench_own_chain": """
        where:
          any:
            - in_segment: bench_own_refs
            - {field: loyalty_tier, op: eq, value: gold}
        exclude: {in_segment: bench_002}
        """,
    # an override of a template that later templates refer to: for globex they read this
    "globex/bench_007": """
        where:
          any:
            - {field: lifecycle_stage, op: eq, value: customer}
            - {in_segment: bench_own_refs}
        """,
    "acme/bench_own_plain": """
        where: {field: city, op: starts_with, value: Jakarta}
        """,
}


def _own(account: str, key: str, where: str) -> str:
    head = f"key: {key}\nname: {key}\naccount: {account}\nowner: t\nvisibility: team\n"
    return head + textwrap.dedent(where).strip() + "\n"


@pytest.fixture(scope="module")
def project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = copy_project(tmp_path_factory.mktemp("onepass") / "project")
    shutil.rmtree(project / "segment_defs")
    shutil.copytree(PROJECT_DIR / "segment_defs", project / "segment_defs")
    bench_defs.write(project / "segment_defs")
    for target, where in OWN.items():
        account, key = target.split("/")
        path = project / "segment_defs" / account / f"{key}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_own(account, key, where))
    demo_data.load(accounts=2, contacts=2000, seed=7, anchor=AS_OF, dbname=pg_database)
    with project_dir(project):
        definitions.compile_definitions()  # online: regexes checked by PostgreSQL too
        yield project


def _build(strategy: str) -> None:
    run_dbt(
        ["build", "--select", *BUILD_SELECT],
        {"as_of": AS_OF.isoformat(), "segment_strategy": strategy},
    )


def _kinds(db: psycopg.Connection, prefix: str) -> dict[str, str]:
    rows = db.execute(
        "select c.relname, c.relkind from pg_class as c "
        "join pg_namespace as n on n.oid = c.relnamespace "
        "where n.nspname = 'segments_audit' and starts_with(c.relname, %s)",
        (prefix,),
    ).fetchall()
    return dict(rows)


def test_one_pass_and_per_segment_give_identical_membership(
    project: Path, db: psycopg.Connection
) -> None:
    with project_dir(project):
        _build("per_segment")
        per_segment = members(db)
        assert set(_kinds(db, "seg__").values()) == {"r"}  # a table per segment
        assert _kinds(db, "seg_pass__") == {}
        _build("one_pass")
        one_pass = members(db)
    kinds = _kinds(db, "seg__")
    assert set(kinds.values()) == {"v"}  # thin views over the passes
    assert _kinds(db, "seg_pass__") == {
        "seg_pass__all": "r",
        "seg_pass__acme": "r",
        "seg_pass__globex": "r",
    }
    assert one_pass == per_segment
    # the comparison means something: most segments have members, and not everyone
    # (acme is on package plus: it skips the templates with has:)
    bench = {k: v for k, v in one_pass.items() if k[1].startswith("bench_")}
    assert len(bench) >= 180
    assert len({len(v) for v in bench.values()}) >= 80
    assert all(len(v) < 1000 for v in bench.values())
    for key in ("bench_own_refs", "bench_own_chain", "bench_007", "bench_010"):
        assert one_pass.get(("globex", key)), key
    # each per-segment view holds exactly its segment's members
    views = [
        ("seg__globex__bench_007", "globex", "bench_007"),
        ("seg__all__bench_001", "acme", "bench_001"),
        ("seg__all__bench_010", "globex", "bench_010"),
        ("seg__globex__bench_own_chain", "globex", "bench_own_chain"),
    ]
    for relation, account, key in views:
        rows = db.execute(
            sql.SQL("select contact_id from segments_audit.{} where account_id = %s").format(
                sql.Identifier(relation)
            ),
            (account,),
        ).fetchall()
        assert {r[0] for r in rows} == one_pass.get((account, key), set()), relation


def test_references_read_the_computed_column(project: Path) -> None:
    target = Path(os.environ["DBT_TARGET_PATH"])  # per module (conftest)
    compiled = next(target.rglob("compiled/**/seg_pass__all.sql"))
    text = compiled.read_text()
    # no per-row subquery against another segment's members: columns of an earlier layer
    assert "exists (" not in text
    assert "prev.seg__all__bench_001" in text
    assert "pass_1 as (" in text and "offset 0" in text
    # globex's override of bench_007 is evaluated inside the template pass (no dbt cycle)
    assert "as seg__globex__bench_007" in text


def test_excluded_accounts_need_no_models(project: Path, db: psycopg.Connection) -> None:
    with project_dir(project):
        db.execute("drop table segments_audit.seg_pass__globex cascade")
        run_dbt(
            ["build", "--select", "segment_memberships"],
            {"as_of": AS_OF.isoformat(), "excluded_accounts": ["globex"]},
        )
    found = members(db)
    assert ("globex", "bench_own_chain") not in found
    assert found[("acme", "bench_own_plain")]
